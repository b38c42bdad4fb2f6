/* A local OpenAI-compatible chat-completions server for tests: the real
 * HTTP protocol over loopback (ob_http_server), both URL forms and both
 * auth headers, answering from a script keyed by substrings of the last
 * user message, and recording every request. */
#ifndef OPSBOT_TEST_LLM_STANDIN_H
#define OPSBOT_TEST_LLM_STANDIN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct ob_lws;
struct ob_llm_standin;

enum ob_si_kind {
    OB_SI_TOOL,           /* 200, finish tool_calls, tool + args (args may be malformed) */
    OB_SI_TEXT,           /* 200, finish stop, content = body, no tool call */
    OB_SI_LENGTH,         /* 200, finish length, a cut-off tool call */
    OB_SI_CONTENT_FILTER, /* 200, finish content_filter, no content */
    OB_SI_FILTER_400,     /* 400 {"error":{"code":"content_filter"}} (Azure prompt filter) */
    OB_SI_STATUS,         /* status with headers and body */
    OB_SI_SLOW,           /* no answer until delay_ms (0 = never) */
};

struct ob_si_rule {
    const char *match; /* substring of the last user message; "" = any */
    enum ob_si_kind kind;
    const char *tool;
    const char *args;
    int status;
    const char *headers[4]; /* "retry-after-ms: 200", NULL-terminated */
    const char *body;
    int times;                            /* applies this many times, then skipped; 0 = always */
    int64_t delay_ms;                     /* OB_SI_SLOW: answer (as a no_action call) after this */
    int prompt_tokens, completion_tokens; /* usage block; 0 = 100 / 20 */
};

struct ob_si_request {
    char *method, *path, *query, *body;
    char *authorization; /* Authorization header or NULL */
    char *api_key;       /* api-key header or NULL */
    char *user_text;     /* content of the last user message */
    uint64_t at_ms;      /* uv_now when it arrived */
    int status;          /* what was answered (0 = not yet) */
};

/* key: the API key expected in Authorization: Bearer (OpenAI paths) or
 * api-key (Azure paths). deployment: the only Azure deployment that exists. */
int ob_llm_standin_new(struct ob_llm_standin **out, struct ob_lws *lws, uv_loop_t *loop,
                       const char *key, const char *deployment);
void ob_llm_standin_free(struct ob_llm_standin *s);
int ob_llm_standin_port(const struct ob_llm_standin *s);
/* Adds a rule (copied); rules are tried in order. */
void ob_llm_standin_add(struct ob_llm_standin *s, const struct ob_si_rule *r);
/* Forgets rules and recorded requests. */
void ob_llm_standin_reset(struct ob_llm_standin *s);
size_t ob_llm_standin_count(const struct ob_llm_standin *s);
const struct ob_si_request *ob_llm_standin_request(const struct ob_llm_standin *s, size_t i);

#endif
