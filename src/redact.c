/* Redaction: a list of PCRE2 patterns (byte mode, JIT) applied one after the
 * other over the text. Each pattern is one linear pass: a match loop that
 * copies the text between matches and writes "[REDACTED]" for the secret
 * part of each match. The secret part is the named group `secret` when the
 * pattern has one, otherwise the whole match.
 *
 * Patterns run without PCRE2_UTF, so arbitrary bytes (invalid UTF-8, NUL)
 * are just bytes. The built-ins are written so that every start position
 * costs O(1) unless it begins a candidate token (a negative lookbehind on
 * the token alphabet), which keeps each pass linear in the text length.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/redact.h"

#define MASK "[REDACTED]"
#define MASK_LEN (sizeof(MASK) - 1)
#define MAX_EXTRA 256
#define MAX_PATTERN_LEN 4096

struct builtin {
    const char *name;
    const char *src;
};

/* Order matters a little: PEM blocks and JWTs go before the generic token
 * shapes (Discord), URLs before key=value assignments. */
static const struct builtin builtins[] = {
    /* A block without its END line ends at the next BEGIN (or the end of
     * the text): a cut-off key followed by another one is masked too. */
    {"pem-private-key", "-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY-----"
                        "[^-]*+(?:-(?!----)[^-]*+)*+"
                        "(?:-----END[A-Z0-9 ]{0,40} PRIVATE KEY-----|(?=-----BEGIN)|\\z)"},
    {"slack-token", "(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}"},
    {"slack-app-token", "(?<![A-Za-z0-9])xapp-[A-Za-z0-9-]{10,}"},
    {"slack-webhook", "https?://hooks\\.slack\\.com/(?:services|workflows|triggers)/"
                      "(?<secret>[A-Za-z0-9_/-]+)"},
    {"github-token",
     "(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"},
    {"aws-access-key-id", "(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"},
    {"aws-secret-access-key", "(?i)aws_?secret_?access_?key[\"']?[ \\t]*[:=][ \\t]*[\"']?"
                              "(?<secret>[A-Za-z0-9/+=]{16,})"},
    {"authorization-header", "(?i)\\bauthorization[\"']?[ \\t]*[:=][ \\t]*[\"']?"
                             "(?:bearer|basic|token|bot)[ \\t]+(?<secret>[A-Za-z0-9._~+/=-]+)"},
    {"bearer-token", "(?i)\\bbearer[ \\t]+(?<secret>[A-Za-z0-9._~+/-]{16,}=*)"},
    {"jwt", "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\\.eyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]*"},
    {"openai-key", "(?<![A-Za-z0-9_-])sk-(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}"},
    {"discord-bot-token",
     "(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{24,}\\.[A-Za-z0-9_-]{6}\\.[A-Za-z0-9_-]{27,}"},
    {"url-password", "(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\\s:@]*:"
                     "(?<secret>[^/\\s@?#]+)@"},
    /* The key is a keyword that ends a name (`PASSWORD`, `db_password`,
     * `x-api-key`), never the tail of a word (`mypassword`): the keyword
     * is not preceded by a letter or digit. (Spelled as "a name start, an
     * optional prefix ending in _ or -, the keyword", the same secrets
     * matched at ~5x the cost: the prefix was scanned from every name
     * start; a differential run over 2 million generated texts found the
     * same secrets both ways.) */
    {"key-value",
     "(?i)(?<![A-Za-z0-9])"
     "(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)"
     "[\"']?[ \\t]*[:=][ \\t]*"
     "(?|\"(?<secret>[^\"\\r\\n]+)\"|'(?<secret>[^'\\r\\n]+)'|(?<secret>[^\\s\"'`,;&]+))"},
};

#define NBUILTIN (sizeof(builtins) / sizeof(builtins[0]))

struct pattern {
    pcre2_code *code;
    char *name;
    int group; /* capture number of `secret`, 0 = whole match */
};

struct ob_redact {
    struct pattern *pats;
    size_t n;
    size_t nbuiltin;
    uint32_t max_pairs; /* ovector pairs needed by the largest pattern */
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
};

struct obuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void obuf_add(struct obuf *b, const char *s, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *np;

        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static int compile_one(struct ob_redact *r, const char *name, const char *src, size_t srclen,
                       char *why, size_t whylen)
{
    struct pattern *p = &r->pats[r->n];
    int errcode, num;
    PCRE2_SIZE erroff;
    uint32_t pairs = 0;

    p->code = pcre2_compile((PCRE2_SPTR)src, srclen, 0, &errcode, &erroff, NULL);
    if (!p->code) {
        char msg[256];

        pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(why, whylen, "%s at offset %zu", msg, (size_t)erroff);
        return OB_EREGEX;
    }
    /* JIT is an optimisation only: without it pcre2_match interprets. */
    (void)pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE);
    num = pcre2_substring_number_from_name(p->code, (PCRE2_SPTR) "secret");
    p->group = num > 0 ? num : 0;
    p->name = strdup(name);
    if (!p->name) {
        pcre2_code_free(p->code);
        p->code = NULL;
        snprintf(why, whylen, "out of memory");
        return OB_ENOMEM;
    }
    pcre2_pattern_info(p->code, PCRE2_INFO_CAPTURECOUNT, &pairs);
    if (pairs + 1 > r->max_pairs)
        r->max_pairs = pairs + 1;
    r->n++;
    return 0;
}

int ob_redact_new(struct ob_redact **out, const struct ob_config *cfg, const cJSON *extra,
                  struct ob_diag *d)
{
    struct ob_redact *r;
    char why[320], where[256];
    size_t nextra = 0;
    int rc = 0;

    *out = NULL;
    if (extra && !cJSON_IsNull(extra)) {
        if (!cJSON_IsArray(extra)) {
            ob_diag_addf(d, "%s: redact: must be a list of pattern strings",
                         ob_config_where(cfg, extra, where, sizeof(where)));
            return OB_ECONFIG;
        }
        nextra = (size_t)cJSON_GetArraySize(extra);
        if (nextra > MAX_EXTRA) {
            ob_diag_addf(d, "%s: redact: too many patterns (%zu, at most %d)",
                         ob_config_where(cfg, extra, where, sizeof(where)), nextra, MAX_EXTRA);
            return OB_ECONFIG;
        }
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return OB_ENOMEM;
    r->pats = calloc(NBUILTIN + nextra, sizeof(*r->pats));
    r->mctx = pcre2_match_context_create(NULL);
    r->jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (!r->pats || !r->mctx) {
        rc = OB_ENOMEM;
        goto out;
    }
    if (r->jstack)
        pcre2_jit_stack_assign(r->mctx, NULL, r->jstack);

    for (size_t i = 0; i < NBUILTIN; i++) {
        int e = compile_one(r, builtins[i].name, builtins[i].src, strlen(builtins[i].src), why,
                            sizeof(why));

        if (e) {
            ob_diag_addf(d, "<built-in>: redact: pattern %s: %s", builtins[i].name, why);
            rc = e;
            goto out;
        }
    }
    r->nbuiltin = r->n;

    for (size_t i = 0; i < nextra; i++) {
        const cJSON *it = cJSON_GetArrayItem(extra, (int)i);
        char name[32];
        size_t len;
        int e;

        if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring) {
            ob_diag_addf(d, "%s: redact[%zu]: must be a non-empty pattern string",
                         ob_config_where(cfg, it, where, sizeof(where)), i);
            rc = rc ? rc : OB_ECONFIG;
            continue;
        }
        len = strlen(it->valuestring);
        if (len > MAX_PATTERN_LEN) {
            ob_diag_addf(d, "%s: redact[%zu]: pattern too long (%zu bytes, at most %d)",
                         ob_config_where(cfg, it, where, sizeof(where)), i, len, MAX_PATTERN_LEN);
            rc = OB_EREGEX;
            continue;
        }
        snprintf(name, sizeof(name), "extra-%zu", i);
        e = compile_one(r, name, it->valuestring, len, why, sizeof(why));
        if (e) {
            ob_diag_addf(d, "%s: redact[%zu]: bad pattern: %s",
                         ob_config_where(cfg, it, where, sizeof(where)), i, why);
            rc = e == OB_ENOMEM ? e : OB_EREGEX;
        }
    }
out:
    if (rc) {
        ob_redact_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void ob_redact_free(struct ob_redact *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        pcre2_code_free(r->pats[i].code);
        free(r->pats[i].name);
    }
    free(r->pats);
    pcre2_match_context_free(r->mctx);
    pcre2_jit_stack_free(r->jstack);
    free(r);
}

size_t ob_redact_count(const struct ob_redact *r)
{
    return r ? r->nbuiltin : 0;
}

/* One pass of pattern p over in[0..len) into out (left empty when nothing
 * matched: the caller keeps its text). Returns the number of
 * masks written, or -1 on OOM. A matching error (limits hit by a
 * pathological input) fails closed: the rest of the text is masked. */
static long pass_one(const struct ob_redact *r, const struct pattern *p, const char *in, size_t len,
                     pcre2_match_data *md, struct obuf *out)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t off = 0, copied = 0;
    long masks = 0;

    while (off <= len) {
        int rc = pcre2_match(p->code, (PCRE2_SPTR)in, len, off, 0, md, r->mctx);
        size_t s, e;

        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            ob_warn("redact", "pattern %s failed (pcre2 error %d); masking the rest", p->name, rc);
            obuf_add(out, in + copied, off - copied);
            obuf_add(out, MASK, MASK_LEN);
            copied = len;
            masks++;
            break;
        }
        s = ov[0];
        e = ov[1];
        if (p->group > 0 && rc > p->group && ov[2 * p->group] != PCRE2_UNSET) {
            s = ov[2 * p->group];
            e = ov[2 * p->group + 1];
        }
        if (s < copied)
            s = copied;
        if (e > len)
            e = len;
        if (e > s) {
            obuf_add(out, in + copied, s - copied);
            obuf_add(out, MASK, MASK_LEN);
            copied = e;
            masks++;
        }
        /* Advance; an empty match (only possible in operator patterns)
         * moves one byte so the loop always ends. */
        if (ov[1] > off && ov[1] > ov[0])
            off = ov[1];
        else
            off = (ov[0] > off ? ov[0] : off) + 1;
    }
    /* nothing masked (most passes): out stays empty, no copy was made */
    if (masks)
        obuf_add(out, in + copied, len - copied);
    return out->oom ? -1 : masks;
}

char *ob_redact_apply(const struct ob_redact *r, const char *text, size_t len)
{
    struct obuf cur = {0};
    pcre2_match_data *md = NULL;

    if (!text)
        len = 0;
    obuf_add(&cur, text ? text : "", len);
    if (!cur.p) {
        cur.p = calloc(1, 1);
        if (!cur.p)
            return NULL;
    }
    if (cur.oom) {
        free(cur.p);
        return NULL;
    }
    if (!r || r->n == 0)
        return cur.p;

    md = pcre2_match_data_create(r->max_pairs, NULL);
    if (!md) {
        free(cur.p);
        return NULL;
    }
    for (size_t i = 0; i < r->n; i++) {
        struct obuf next = {0};
        long masks = pass_one(r, &r->pats[i], cur.p, cur.len, md, &next);

        if (masks < 0) {
            free(next.p);
            free(cur.p);
            cur.p = NULL;
            break;
        }
        if (masks == 0) {
            free(next.p);
            continue;
        }
        free(cur.p);
        cur = next;
    }
    pcre2_match_data_free(md);
    return cur.p;
}
