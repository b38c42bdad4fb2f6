/* Shared by the libFuzzer targets: the shipped catalog (the intents directory,
 * loaded once through the real config loader), input splitting helpers and
 * the entry-point prototypes. Everything is static: each target is one
 * translation unit. */
#ifndef OPSBOT_FUZZ_COMMON_H
#define OPSBOT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/config.h"
#include "opsbot/intent.h"
#include "opsbot/log.h"

#ifndef OB_FUZZ_SOURCE_ROOT
#define OB_FUZZ_SOURCE_ROOT ".."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* fuzz_fs.c: an empty-ish private directory (created on first call) that
 * fuzzed configuration files live in; globs outside it match nothing. */
const char *fuzz_sandbox(void);

struct fuzz_shipped {
    struct ob_config *cfg;
    struct ob_catalog *cat;
};

static inline const char *fuzz_source_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : OB_FUZZ_SOURCE_ROOT;
}

/* Log lines would drown libFuzzer's output: errors only. */
static inline void fuzz_quiet(void)
{
    ob_log_set_level(OB_LOG_ERROR);
    ob_log_set_human(1);
}

/* The shipped catalog; aborts (setup, not input) when it does not load. */
static inline struct fuzz_shipped fuzz_load_shipped(void)
{
    struct fuzz_shipped s = {0};
    struct ob_diag d;
    char path[4096];

    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/opsbot-fuzz.yaml", fuzz_source_root());
    if (ob_config_load_string(&s.cfg, "actions: {include: intents/*.yaml}\n", path, &d) ||
        ob_catalog_load(&s.cat, s.cfg, &d)) {
        ob_diag_print(&d, NULL);
        fprintf(stderr, "fuzz: cannot load the shipped catalog under %s\n", fuzz_source_root());
        abort();
    }
    ob_diag_release(&d);
    return s;
}

/* A NUL-terminated copy of the input (libFuzzer's buffer is not). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Cuts s at the first occurrence of sep: returns the rest (or NULL). */
static inline char *fuzz_cut(char *s, char sep)
{
    char *p = s ? strchr(s, sep) : NULL;

    if (!p)
        return NULL;
    *p = '\0';
    return p + 1;
}

/* What the pipeline relies on in a parse result, whatever the input was:
 * complete proposals name a catalog action, hold only that action's
 * parameters, each value already canonical (validating it again gives it
 * back unchanged), and an ASK names the missing parameter. Aborts when not. */
static inline void fuzz_check_parse(const struct ob_catalog *cat, const struct ob_parse_result *r)
{
    if (r->n > OB_MAX_PROPOSALS || strnlen(r->message, sizeof(r->message)) == sizeof(r->message))
        abort();
    if (r->status != OB_PARSE_OK && r->status != OB_PARSE_ASK)
        return;
    if (r->n == 0 || (r->status == OB_PARSE_ASK && r->n != 1))
        abort();
    for (size_t i = 0; i < r->n; i++) {
        const struct ob_proposal *p = &r->proposals[i];

        if (!p->action || p->action != ob_catalog_find(cat, p->action->name) ||
            p->nparams > OB_MAX_PARAMS)
            abort();
        if (r->status == OB_PARSE_ASK && (!p->missing || !p->missing->required))
            abort();
        for (size_t k = 0; k < p->nparams; k++) {
            const struct ob_param_def *d = ob_action_param(p->action, p->params[k].name);
            char again[256], why[256];

            if (!d || ob_param_validate(d, p->params[k].value, again, sizeof(again), why,
                                        sizeof(why)) != 0)
                abort();
            if (strcmp(again, p->params[k].value))
                abort();
        }
    }
}

#endif
