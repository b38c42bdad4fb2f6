/* Redaction: masks secrets in everything that leaves the process (chat
 * echoes, logs, audit exports, later LLM prompts). Built-in PCRE2 patterns
 * cover Slack (xox[abposr]-, xapp-), Discord bot tokens, GitHub tokens
 * (ghp_, gho_, ghs_, github_pat_), AWS access key ids and secret keys,
 * `Authorization: Bearer …` / `Basic …`, JWTs, PEM private-key blocks,
 * passwords in URLs (scheme://user:PASS@host) and `password=…`/`token=…`
 * style assignments; the operator adds more in the config.
 */
#ifndef OPSBOT_REDACT_H
#define OPSBOT_REDACT_H

#include <stddef.h>

#include "opsbot/config.h"

struct ob_redact;

/* Compiles the built-in patterns plus `extra` (a cJSON array of pattern
 * strings, may be NULL). Bad extra patterns are reported into d with their
 * file:line and make it fail with OB_EREGEX. */
int ob_redact_new(struct ob_redact **out, const struct ob_config *cfg, const cJSON *extra,
                  struct ob_diag *d);
void ob_redact_free(struct ob_redact *r);

/* Returns a malloc'd copy of text (len bytes, not necessarily NUL-terminated)
 * where every match is replaced by "[REDACTED]" (for key=value and URL
 * password forms only the secret part is masked, so the reader still sees
 * which key it was). NULL only on OOM. r may be NULL: plain copy. */
char *ob_redact_apply(const struct ob_redact *r, const char *text, size_t len);
/* Number of built-in patterns (for check-config's summary). */
size_t ob_redact_count(const struct ob_redact *r);

#endif
