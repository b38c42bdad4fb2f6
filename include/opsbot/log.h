/* JSON-lines logging to stderr. Every line is redacted before it is written
 * when a redactor is installed. */
#ifndef OPSBOT_LOG_H
#define OPSBOT_LOG_H

enum ob_log_level { OB_LOG_DEBUG, OB_LOG_INFO, OB_LOG_WARN, OB_LOG_ERROR };

struct ob_redact;

void ob_log_set_level(enum ob_log_level level);
/* Parses "debug" | "info" | "warn" | "error". Returns 0 or OB_EINVAL. */
int ob_log_level_parse(const char *s, enum ob_log_level *out);
/* Borrowed; must outlive logging (or be reset to NULL first). */
void ob_log_set_redactor(const struct ob_redact *r);
/* Human mode writes "level component: message" instead of JSON (the
 * console and the one-shot commands use it). */
void ob_log_set_human(int human);

/* {"ts":"…","level":"info","comp":"policy","msg":"…"} */
void ob_log(enum ob_log_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ob_debug(comp, ...) ob_log(OB_LOG_DEBUG, comp, __VA_ARGS__)
#define ob_info(comp, ...) ob_log(OB_LOG_INFO, comp, __VA_ARGS__)
#define ob_warn(comp, ...) ob_log(OB_LOG_WARN, comp, __VA_ARGS__)
#define ob_error(comp, ...) ob_log(OB_LOG_ERROR, comp, __VA_ARGS__)

#endif
