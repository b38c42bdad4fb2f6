/* Diagnose and suggest: "checkout in prod is slow" -> read-only evidence,
 * a deterministic reading, up to three allow-listed proposals with their
 * reasons and the most relevant runbook passage. Nothing runs from a
 * diagnosis without a person's pick (docs/DIAGNOSE.md).
 *
 * The playbook is data: the `playbook:` mapping of a catalog document
 * (shipped: intents/diagnose.yaml) names the evidence (catalog read
 * actions with fixed parameters), the facts read from their answers
 * (`from: EVIDENCE.KEY` or `expr:`), thresholds, readings and the rules
 * mapping facts to proposals. The top-level `diagnose:` section of the main
 * configuration holds the runtime settings:
 *
 *   diagnose:
 *     runbooks: ../../runbooks        # Markdown, indexed with BM25 per section
 *     budget: 10s                     # evidence time box
 *     max_proposals: 3                # 1..3
 *     pick_ttl: 30m                   # picks are taken this long
 *     llm: {narrative: true, connection: local, prompt: ../../intents/prompts/diagnose.md,
 *           max_tokens: 300, token_budget: 3000, timeout: 8s}
 *
 * This header is the pure part (loading, analysis, runbooks); the pipeline
 * part lives in the core (src/diagnose_run.c).
 */
#ifndef OPSBOT_DIAGNOSE_H
#define OPSBOT_DIAGNOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "opsbot/config.h"
#include "opsbot/intent.h"

struct ob_llm_config;
struct ob_llm_conn;

#define OB_DX_MAX_EVIDENCE 16
#define OB_DX_MAX_PROPOSALS 3
#define OB_DX_READING_MAX 1024
#define OB_DX_NARRATIVE_MAX 600 /* bytes of an LLM narrative kept */

/* ---- runbooks: BM25 over Markdown sections ------------------------------ */

struct ob_runbooks;

struct ob_runbook_hit {
    const char *file;    /* as added (relative to the runbooks directory) */
    const char *heading; /* the section's heading ("" before the first one) */
    const char *text;    /* the section's body (without the heading line) */
    double score;
};

/* An empty index (add documents with ob_runbooks_add). */
struct ob_runbooks *ob_runbooks_new(void);
/* Indexes every *.md of dir (not recursive; at most 200 files of 256 KiB
 * each), in name order. Problems (unreadable files) go into d. Returns 0,
 * OB_ECONFIG (dir missing) or OB_ENOMEM. */
int ob_runbooks_load(struct ob_runbooks **out, const char *dir, struct ob_diag *d);
/* Splits Markdown text into sections at ATX headings (#, ##, ###…; not
 * inside ``` fences) and indexes each. Returns 0 or OB_E2BIG (caps). */
int ob_runbooks_add(struct ob_runbooks *rb, const char *file, const char *text, size_t len);
void ob_runbooks_free(struct ob_runbooks *rb);
size_t ob_runbooks_sections(const struct ob_runbooks *rb);
/* BM25 (k1 1.2, b 0.75; heading terms count twice) of query against every
 * section: the best max hits with a score > 0, best first. Returns the
 * number of hits. */
size_t ob_runbooks_search(const struct ob_runbooks *rb, const char *query,
                          struct ob_runbook_hit *hits, size_t max);
/* The first sentences of a hit's text (blank lines and list markers
 * folded), cut at about len bytes on a word boundary. */
const char *ob_runbook_passage(const struct ob_runbook_hit *h, char *buf, size_t len);

/* ---- the loaded configuration ---------------------------------------------- */

struct ob_diagnose;

struct ob_dx_settings {
    bool enabled; /* the catalog has a `diagnose` action (and so a playbook) */
    char *runbooks_dir;
    int64_t budget_ms;   /* default 10 s; 1 s .. 5 m */
    int max_proposals;   /* 1 .. 3, default 3 */
    int64_t pick_ttl_ms; /* default 30 m */
    /* LLM narrative and re-ranking (diagnose.llm). */
    bool narrative;                 /* on when a connection is known, unless narrative: false */
    const struct ob_llm_conn *conn; /* diagnose.llm.connection, else llm.connection */
    char *prompt;                   /* the prompt file's content */
    char prompt_version[13];
    int max_tokens;         /* answer tokens, default 300 */
    int token_budget;       /* prompt + answer tokens per diagnosis, default 3000 */
    int64_t llm_timeout_ms; /* default 8 s */
};

/* One evidence query of the playbook. */
struct ob_dx_evidence_def {
    char name[64];
    char label[128];
    const struct ob_action *action; /* a read action of the catalog */
    struct ob_kv params[OB_MAX_PARAMS];
    size_t nparams; /* fixed parameters, validated at load */
};

/* Loads `diagnose:` and the playbook against the catalog (evidence actions
 * must exist and be read actions with an executor; rule actions must exist;
 * every expression must parse and name known facts or thresholds; every
 * template placeholder must be a fact, service, env or symptom). Problems
 * into d as file:line: key: message. *out is set on success (settings
 * disabled without a `diagnose` action). Returns 0 or OB_ECONFIG. */
int ob_diagnose_load(struct ob_diagnose **out, const struct ob_config *cfg,
                     const struct ob_catalog *cat, const struct ob_llm_config *llm,
                     struct ob_diag *d);
void ob_diagnose_free(struct ob_diagnose *dg);
const struct ob_dx_settings *ob_diagnose_settings(const struct ob_diagnose *dg);
size_t ob_diagnose_evidence_count(const struct ob_diagnose *dg);
const struct ob_dx_evidence_def *ob_diagnose_evidence(const struct ob_diagnose *dg, size_t i);
const struct ob_runbooks *ob_diagnose_runbooks(const struct ob_diagnose *dg);
/* Builds the complete, validated proposal of evidence i for service and
 * env. Returns 0 or OB_EINVAL with why. */
int ob_diagnose_evidence_proposal(const struct ob_diagnose *dg, size_t i, const char *service,
                                  const char *env, struct ob_proposal *out, char *why,
                                  size_t whylen);

/* ---- the analysis (pure: evidence in, reading and proposals out) ----------- */

struct ob_dx_proposal {
    struct ob_proposal prop; /* validated against the catalog */
    char rule[64];
    char reason[320];
    char runbook_file[256];
    char runbook_heading[160];
    char runbook_passage[400];
};

struct ob_dx_result {
    char reading[OB_DX_READING_MAX]; /* "error rate 8× yesterday's; a rollout 12m ago; …" */
    struct ob_dx_proposal proposals[OB_DX_MAX_PROPOSALS];
    size_t n;
    size_t dropped; /* rule matches whose parameters did not validate (logged) */
    cJSON *facts; /* every fact known: {"err": 0.09, …} (owned; free with ob_dx_result_release) */
};

struct ob_dx_input {
    const char *service, *env, *symptom; /* symptom may be NULL */
    const char *text;                    /* the user's words (runbook query), may be NULL */
    const cJSON *evidence;               /* {"NAME": data, …}; missing names are unknown */
};

/* Runs facts, readings and rules. Returns 0 or OB_ENOMEM. */
int ob_diagnose_analyse(const struct ob_diagnose *dg, const struct ob_catalog *cat,
                        const struct ob_dx_input *in, struct ob_dx_result *out);
void ob_dx_result_release(struct ob_dx_result *r);

/* One line for an evidence answer: "850 ms", "3/3 ready · revision 42 ·
 * rolled out 10m ago", "37 lines"; from data when it has a known shape. */
const char *ob_dx_evidence_summary(const cJSON *data, char *buf, size_t len);

/* ---- the LLM's part -------------------------------------------------------- */

/* The user message for the narrative call: service, symptom, evidence
 * lines, reading and the numbered proposals, cut to fit budget_bytes. */
char *ob_dx_llm_prompt(const char *service, const char *env, const char *symptom,
                       const char *evidence_lines, const struct ob_dx_result *r,
                       size_t budget_bytes);

struct ob_dx_llm_answer {
    char narrative[OB_DX_NARRATIVE_MAX + 1];
    size_t order[OB_DX_MAX_PROPOSALS]; /* proposal indexes, best first */
    size_t norder;                     /* 0: keep the rules' order */
    char ignored[300];                 /* why a re-ranking was ignored ("" if none) */
};

/* Reads the model's tool arguments ({"narrative": "...", "ranking": [...]})
 * against the rule-made proposals: ranking entries may be proposal numbers
 * (1-based), "action key=value …" strings or {"action", "params"} objects;
 * any entry that is not exactly one of r's proposals makes the whole
 * ranking ignored (ignored says which). Returns 0 or OB_EPARSE (no usable
 * arguments). */
int ob_dx_llm_read(const char *tool, const char *arguments, const struct ob_dx_result *r,
                   struct ob_dx_llm_answer *out);

/* ---- picks ----------------------------------------------------------------- */

/* 1..3 for a pick reaction or button value (one, two, three, 1, 2, 3, the
 * keycap emoji 1️⃣ 2️⃣ 3️⃣ with or without U+FE0F, keycap_1…, pick:1…), else 0. */
int ob_dx_pick_number(const char *emoji);

#endif
