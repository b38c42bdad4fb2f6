/* `opsbot eval`: runs labelled requests through the parser (rules, LLM or
 * both, per variant), computes the metrics, writes CSV and HTML reports and
 * gates on accuracy. Metric definitions: docs/LLM.md.
 *
 * Dataset lines (JSONL): {"text": "...", "action": "restart" | null,
 * "params": {...}}; params is the subset that must match exactly.
 */
#ifndef OPSBOT_EVAL_H
#define OPSBOT_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

struct ob_http;
struct ob_bundle;

#define OB_EVAL_MAX_LABELS 65 /* actions + "none"; more are left out of the matrix */

struct ob_eval_opts {
    const char *const *datasets;
    size_t ndatasets;
    const char *const *variants; /* "NAME:key=value,..." (prompt, connection, model, mode,
                                    temperature) */
    size_t nvariants;
    const char *csv_path;  /* NULL = none */
    const char *html_path; /* NULL = none */
    size_t concurrency;    /* LLM calls in flight; 0 = 4 */
    bool progress;         /* a progress line on stderr */
    FILE *out;             /* the summary table; NULL = none */
};

struct ob_eval_action_stats {
    char action[64];
    size_t tp, fp, fn, support;
    double precision, recall, f1;
};

/* Rates are in [0, 1], or -1 when their denominator is zero (n/a). */
struct ob_eval_summary {
    char variant[64];
    char mode[16];
    char connection[64];
    char model[128];
    char prompt_version[13];
    size_t lines, correct, exact;
    size_t clarify_total, clarify_asked;   /* lines missing a required parameter */
    size_t noaction_total, noaction_acted; /* lines whose expected action is none */
    size_t answered, schema_valid;         /* LLM answers, and those valid */
    size_t llm_calls, fallbacks;
    double accuracy, exact_match, clarification_rate, false_action_rate, schema_valid_rate,
        macro_f1;
    int64_t tokens_in, tokens_out;
    double cost_usd;
    int64_t latency_p50_ms, latency_p95_ms;
    size_t nlabels; /* labels[] = actions seen (catalog order), then "none" */
    char labels[OB_EVAL_MAX_LABELS][64];
    size_t confusion[OB_EVAL_MAX_LABELS][OB_EVAL_MAX_LABELS]; /* [expected][predicted] */
    struct ob_eval_action_stats actions[OB_EVAL_MAX_LABELS];  /* per label except none */
    size_t nactions;
};

struct ob_eval;

/* Runs every dataset line through every variant on loop (other handles may
 * be active: it runs the loop until its own work is done). http may be NULL
 * (one is created when a variant needs the LLM). Usage problems (bad
 * variant, dataset errors) return OB_EUSAGE / OB_EPARSE with err filled;
 * write errors -errno. */
int ob_eval_run(struct ob_eval **out, uv_loop_t *loop, struct ob_http *http,
                const struct ob_bundle *b, const struct ob_eval_opts *o, char *err, size_t errlen);
size_t ob_eval_nvariants(const struct ob_eval *e);
const struct ob_eval_summary *ob_eval_summary(const struct ob_eval *e, size_t variant);
/* True when every variant reaches min_accuracy; otherwise msg says which
 * and the numbers. */
bool ob_eval_gate(const struct ob_eval *e, double min_accuracy, char *msg, size_t len);
void ob_eval_free(struct ob_eval *e);

/* Diagnosis lines ({"text", "fixture", "expect"}: the symptom text must be
 * understood as `diagnose`, the fixture's evidence goes through the
 * playbook and the first proposal's action is scored; see docs/DIAGNOSE.md).
 * False when the datasets held none. The gate applies to them too. */
bool ob_eval_diagnosis(const struct ob_eval *e, size_t *lines, size_t *correct, double *accuracy);

/* The command: exit status 0, 1 (gate not met, config or I/O error) or 2
 * (usage). argv[0] is "eval". */
int ob_eval_main(int argc, char **argv);

#endif
