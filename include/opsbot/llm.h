/* The LLM intent parser: named connections (OpenAI, Azure OpenAI and any
 * OpenAI-compatible server such as Ollama or vLLM), tool schemas generated
 * from the action catalog, the chat-completions call over the HTTP client on
 * the loop (retries, timeouts, never blocking), and the validation that
 * turns the model's tool call into a struct ob_parse_result exactly like the
 * rules do. The LLM only ever proposes: its answer goes through
 * ob_param_validate and then the normal policy.
 *
 * Configuration:
 *   connections:
 *     local: {api_type: openai, api_base: "http://127.0.0.1:11434/v1",
 *             api_key: "${OLLAMA_KEY:-none}", model: llama3.1, timeout: 20s,
 *             retries: 2, price: {input_per_1m: 0, output_per_1m: 0}}
 *     aoai:  {api_type: azure, api_base: "${AOAI_BASE}", api_key: "${AOAI_KEY}",
 *             api_version: 2024-10-21, deployment: gpt-4o-mini}
 *   llm:
 *     connection: local
 *     mode: rules-first            # rules-only | rules-first | llm-first
 *     prompt: ../../intents/prompts/parser.md
 *     max_tokens: 400
 *     context_messages: 0
 *     temperature: 0
 *     budget: {max_calls_per_minute: 60}
 */
#ifndef OPSBOT_LLM_H
#define OPSBOT_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "opsbot/config.h"
#include "opsbot/intent.h"

struct ob_http;
struct ob_redact;

#define OB_LLM_QUESTION_MAX 300 /* clarify questions are cut here */
#define OB_LLM_CONTEXT_MAX 20   /* context_messages cap */

enum ob_llm_api { OB_LLM_API_OPENAI, OB_LLM_API_AZURE };
enum ob_llm_mode { OB_LLM_RULES_ONLY, OB_LLM_RULES_FIRST, OB_LLM_LLM_FIRST };

/* One named connection. Strings owned by the struct. */
struct ob_llm_conn {
    char *name;
    enum ob_llm_api api;
    char *api_base;    /* without a trailing '/' */
    char *api_key;     /* never logged, never echoed */
    char *api_version; /* azure: "2024-10-21" (dated form) or "v1" (the v1 form) */
    char *model;       /* openai: the model; azure: the deployment */
    int64_t timeout_ms;
    int retries;
    double input_per_1m, output_per_1m; /* USD per 1M tokens */
    char where[300];
};

/* The `llm:` section. */
struct ob_llm_settings {
    bool enabled; /* an llm: section with a mode other than rules-only */
    enum ob_llm_mode mode;
    const struct ob_llm_conn *conn; /* points into the config's connections */
    char *prompt_path;
    char *prompt; /* the file's content */
    char prompt_version[13];
    int max_tokens;
    int context_messages;
    double temperature;
    int max_calls_per_minute; /* 0 = no guard */
};

struct ob_llm_config {
    struct ob_llm_conn *conns;
    size_t nconns;
    struct ob_llm_settings set;
};

/* Loads and validates `connections:` and `llm:` (every problem into d as
 * file:line: key: message). *out is always set on success (set.enabled false
 * without an llm: section). Returns 0 or OB_ECONFIG. */
int ob_llm_config_load(struct ob_llm_config **out, const struct ob_config *cfg, struct ob_diag *d);
void ob_llm_config_free(struct ob_llm_config *c);
const struct ob_llm_conn *ob_llm_conn_find(const struct ob_llm_config *c, const char *name);
int ob_llm_mode_parse(const char *s, enum ob_llm_mode *out);
const char *ob_llm_mode_name(enum ob_llm_mode m);
/* Reads a prompt file into *text (malloc'd) and its version. */
int ob_llm_prompt_load(const char *path, char **text, char version[13]);
/* First 12 hex digits of BLAKE2b-256 of the content. */
void ob_llm_prompt_version(const char *text, size_t len, char out[13]);

/* ---- the request ----------------------------------------------------- */

/* The tools array: one strict function per catalog action (parameters
 * generated from the definitions), plus `clarify` {question} and
 * `no_action` {reason}. */
cJSON *ob_llm_tools(const struct ob_catalog *cat);
/* JSON schema of one action's parameters. */
cJSON *ob_llm_action_schema(const struct ob_action *a);

struct ob_llm_parse_req {
    const struct ob_llm_settings *set; /* set->conn is used */
    const struct ob_catalog *cat;      /* must outlive the call */
    const struct ob_redact *red;       /* user text and context are redacted */
    const char *text;
    const char *const *context; /* earlier messages of the thread, oldest first */
    size_t ncontext;
    bool no_budget; /* eval: the per-minute guard does not apply */
};

/* The request body (malloc'd JSON text) for rq on its connection. */
char *ob_llm_request_body(const struct ob_llm_parse_req *rq);
/* URL (malloc'd) of the chat-completions endpoint of c. */
char *ob_llm_url(const struct ob_llm_conn *c);

/* ---- the answer ------------------------------------------------------ */

enum ob_llm_outcome {
    OB_LLM_PROPOSAL,   /* an action tool call: parse holds OK, ASK or INVALID */
    OB_LLM_CLARIFY,    /* the model asks: question */
    OB_LLM_NO_ACTION,  /* nothing to do: text holds the model's reason */
    OB_LLM_UNPARSED,   /* no usable answer (cut at max_tokens, malformed
                          arguments, no tool call): the rules' result is used */
    OB_LLM_UNAVAILABLE /* timeout, outage, content filter, configuration
                          error, budget: the rules' result is used */
};

struct ob_llm_result {
    enum ob_llm_outcome outcome;
    struct ob_parse_result parse;
    char text[OB_LLM_QUESTION_MAX + 1]; /* clarify question / no_action reason */
    char why[256];                      /* unparsed / unavailable: for the echo */
    char result[24];                    /* metrics label: ok, invalid, ask, clarify, no_action,
                                           unknown_action, unparsed, timeout, error, content_filter,
                                           config_error, budget */
    char tool[65];                      /* tool name as answered ("" when none) */
    bool answered;                      /* the server returned a chat completion */
    bool schema_valid;                  /* answered with a known tool and valid arguments */
    char connection[64];
    char model[128];
    char prompt_version[13];
    int64_t tokens_in, tokens_out;
    double cost_usd;
    int64_t latency_ms;
    int attempts;
    long http_status;
    char finish_reason[32];
};

/* Turns one chat-completion response body into r (outcome, parse, usage,
 * finish reason); connection fields and latency are the caller's. */
void ob_llm_answer_parse(const struct ob_catalog *cat, const char *body, size_t len,
                         struct ob_llm_result *r);
/* Validates one tool call (name + JSON arguments text) against the catalog
 * like the rules parser: unknown tool, unknown parameter, bad value ->
 * INVALID; missing required -> ASK; null means "not given". */
void ob_llm_tool_call(const struct ob_catalog *cat, const char *name, const char *arguments,
                      struct ob_llm_result *r);

double ob_llm_cost(const struct ob_llm_conn *c, int64_t tokens_in, int64_t tokens_out);

/* Retry policy (the OpenAI SDKs' rules): x-should-retry overrides; else
 * 408, 409, 429 and 5xx (and status 0 = no response) are retried. */
bool ob_llm_should_retry(long status, const char *x_should_retry);
/* Delay before retry number attempt (0-based): retry-after-ms, else
 * retry-after seconds or HTTP-date, used when 0 < value <= 60 s; else
 * min(500 ms * 2^attempt, 8 s) times jitter (0.75 .. 1.0; jitter01 in
 * [0,1] picks it). now_ms is for HTTP-dates. */
int64_t ob_llm_retry_delay_ms(const char *retry_after_ms, const char *retry_after, int attempt,
                              double jitter01, int64_t now_ms);

/* ---- the client ------------------------------------------------------ */

struct ob_llm;
struct ob_llm_call;

typedef void (*ob_llm_cb)(void *data, const struct ob_llm_result *r);

int ob_llm_new(struct ob_llm **out, uv_loop_t *loop, struct ob_http *http);
/* Cancels every call (callbacks not called) and closes its timers; run the
 * loop afterwards. NULL-safe. */
void ob_llm_free(struct ob_llm *l);
/* Starts one parse; cb runs exactly once, on the loop, never from inside
 * this call; within the connection's timeout (plus scheduling) in every
 * case. Returns 0 or a negative error (cb not called). */
int ob_llm_parse(struct ob_llm *l, const struct ob_llm_parse_req *rq, ob_llm_cb cb, void *data,
                 struct ob_llm_call **call_out);
void ob_llm_cancel(struct ob_llm_call *c);
size_t ob_llm_active(const struct ob_llm *l);

/* ---- the modes --------------------------------------------------------- */

/* Whether the LLM is consulted for text given the rules' result: never in
 * rules-only or for the explicit grammar ("!restart ..."); in rules-first
 * only when the rules found nothing; always in llm-first. */
bool ob_llm_wanted(const struct ob_llm_settings *s, const char *text,
                   const struct ob_parse_result *rules);
/* Whether the rules' result stands in for lr (unparsed / unavailable). */
bool ob_llm_falls_back(const struct ob_llm_result *lr);

#endif
