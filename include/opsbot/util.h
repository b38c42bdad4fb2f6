/* Small helpers shared by every module. */
#ifndef OPSBOT_UTIL_H
#define OPSBOT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall clock, ms since the epoch (UTC). */
int64_t ob_now_ms(void);
/* "2026-11-27T17:04:07.123Z" into buf. */
const char *ob_time_format(int64_t ms, char *buf, size_t len);
/* Parses "2026-11-27", "2026-11-27T17:04", "2026-11-27T17:04:07Z" (UTC) or
 * a relative "-2h" / "-30m" (from now). Returns 0 or OB_EINVAL. */
int ob_time_parse(const char *s, int64_t *out_ms);

/* Copies at most len-1 bytes and always terminates. Returns strlen(src)
 * (truncation when >= len). */
size_t ob_strlcpy(char *dst, const char *src, size_t len);
/* Aborts with a log line on OOM; for small fixed-size allocations only. */
void *ob_xmalloc(size_t n);
void *ob_xcalloc(size_t n, size_t size);
char *ob_xstrdup(const char *s);
/* Length (1..4) of the valid UTF-8 sequence at s, left bytes available
 * (left >= 1), or 0 when it is not valid (overlong, surrogate, cut off). */
size_t ob_utf8_seq(const char *s, size_t left);
/* True when s[0..len) is valid UTF-8 without NUL bytes. */
bool ob_utf8_valid(const char *s, size_t len);
/* Writes s to f (a FILE *) with & < > " ' escaped for HTML text and
 * attribute values; NULL writes nothing. */
void ob_html_escape(void *f, const char *s);
/* Writes s to f (a FILE *) as one RFC 4180 CSV field, without a separator:
 * as is, or in double quotes with '"' doubled when it holds , " CR or LF.
 * A value starting with = + - @ TAB CR (which Excel and LibreOffice would
 * run as a formula) or with ' gets a ' in front and is always quoted
 * (OWASP's CSV injection advice); a reader gets the exact value back by
 * dropping one leading ' from a field that has one. NULL writes "". */
void ob_csv_field(void *f, const char *s);
/* Equal strings, two NULLs counting as equal. */
bool ob_str_same(const char *a, const char *b);
/* The value of a hex digit (either case), or -1. */
int ob_hexval(int c);
/* Random id with a prefix: "r-5f0c2a9e1b7d" (libsodium randombytes). */
void ob_random_id(const char *prefix, char *buf, size_t len);

#endif
