/* opsbot error codes.
 *
 * Functions named as actions return int: 0 on success, a negative code on
 * failure. System errors are -errno (so libuv results pass through
 * unchanged); opsbot's own codes live far below the errno range. Foreign
 * error spaces (libuv, PCRE2, SQLite, cJSON NULL) are translated exactly
 * once, where they are met, and the detail is logged there.
 */
#ifndef OPSBOT_ERR_H
#define OPSBOT_ERR_H

#define OB_ERR_MAP(XX)                                                                             \
    XX(CONFIG, -20001, "invalid configuration")                                                    \
    XX(JSON, -20002, "malformed JSON")                                                             \
    XX(YAML, -20003, "malformed YAML")                                                             \
    XX(REGEX, -20004, "bad regular expression")                                                    \
    XX(PARSE, -20005, "cannot parse input")                                                        \
    XX(2BIG, -20006, "input too large")                                                            \
    XX(NOMEM, -20007, "out of memory")                                                             \
    XX(STORE, -20008, "state store failure")                                                       \
    XX(DUP, -20009, "already claimed")                                                             \
    XX(NOTFOUND, -20010, "not found")                                                              \
    XX(TIMEOUT, -20011, "timed out")                                                               \
    XX(DENIED, -20012, "denied by policy")                                                         \
    XX(HTTP, -20013, "HTTP failure")                                                               \
    XX(WS, -20014, "websocket failure")                                                            \
    XX(UTF8, -20015, "invalid UTF-8")                                                              \
    XX(TAMPER, -20016, "audit chain broken")                                                       \
    XX(INVAL, -20017, "invalid value")                                                             \
    XX(EXEC, -20018, "executor failure")                                                           \
    XX(BUSY, -20019, "busy")                                                                       \
    XX(USAGE, -20020, "bad command-line usage")

enum ob_err {
#define OB_ERR_ENUM(name, code, text) OB_E##name = (code),
    OB_ERR_MAP(OB_ERR_ENUM)
#undef OB_ERR_ENUM
};

/* Human text for any code: opsbot codes, -errno and 0 ("ok"). */
const char *ob_strerror(int err);
/* Symbolic name ("OB_ECONFIG", "ENOENT", "OK"). */
const char *ob_err_name(int err);

#endif
