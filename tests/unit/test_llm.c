/* The LLM parser's pure parts: tool schemas from the catalog, the request
 * body and URL forms, validation of the model's answers (hallucinated
 * actions, bad enums, out-of-range integers, shell characters, clarify,
 * no_action, cut-off answers), cost arithmetic, prompt versions, retry
 * rules, the `connections:` / `llm:` configuration and the modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/intent.h"
#include "opsbot/llm.h"
#include "opsbot/redact.h"

struct fixture {
    struct ob_config *cfg;
    struct ob_catalog *cat;
};

static struct fixture fx;

/* String literals into the config structs' char * fields. */
static char *S(const char *s)
{
    return (char *)(uintptr_t)s;
}

static const char *source_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

static int setup(void **state)
{
    struct ob_diag d;
    char path[4096];

    (void)state;
    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/opsbot-test.yaml", source_root());
    assert_int_equal(
        ob_config_load_string(&fx.cfg, "actions: {include: intents/*.yaml}\n", path, &d), 0);
    assert_int_equal(ob_catalog_load(&fx.cat, fx.cfg, &d), 0);
    assert_int_equal(d.n, 0);
    ob_diag_release(&d);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ob_catalog_free(fx.cat);
    ob_config_free(fx.cfg);
    return 0;
}

static const cJSON *tool(const cJSON *tools, const char *name)
{
    const cJSON *t;

    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(fn, "name");

        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return fn;
    }
    fail_msg("no tool %s", name);
    return NULL;
}

static const cJSON *prop(const cJSON *fn, const char *name)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(fn, "parameters"),
                                         "properties"),
        name);

    assert_non_null(p);
    return p;
}

static bool array_has(const cJSON *a, const char *s)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, a)
    {
        if (s ? cJSON_IsString(it) && !strcmp(it->valuestring, s) : cJSON_IsNull(it))
            return true;
    }
    return false;
}

/* ---- schemas ---------------------------------------------------------------- */

static void test_schema_from_catalog(void **state)
{
    cJSON *tools = ob_llm_tools(fx.cat);
    const cJSON *fn, *params, *p, *t;
    const struct ob_action *scale = ob_catalog_find(fx.cat, "scale");

    (void)state;
    assert_non_null(scale);
    /* One function per action plus clarify and no_action. */
    assert_int_equal(cJSON_GetArraySize(tools), (int)fx.cat->n + 2);
    cJSON_ArrayForEach(t, tools)
    {
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(t, "type")->valuestring, "function");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(t, "function"), "strict")));
        params = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"),
                                                  "parameters");
        assert_true(
            cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(params, "additionalProperties")));
        /* strict mode: every property is listed in required */
        assert_int_equal(
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(params, "required")),
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(params, "properties")));
    }
    fn = tool(tools, "scale");
    p = prop(fn, "service");
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "type"), "string"));
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "type"), "null"));
    /* The PCRE pattern as written in the catalog. */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "pattern")->valuestring,
                        scale->params[0].pattern_src);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "pattern")->valuestring,
                        "^[a-z][a-z0-9-]{0,62}$");
    p = prop(fn, "env");
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "enum"), "prod"));
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "enum"), "staging"));
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "enum"), "dev"));
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "enum"), NULL));
    assert_false(array_has(cJSON_GetObjectItemCaseSensitive(p, "enum"), "production"));
    p = prop(fn, "replicas");
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "type"), "integer"));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(p, "minimum")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(p, "maximum")->valueint, 50);
    assert_non_null(
        strstr(cJSON_GetObjectItemCaseSensitive(p, "description")->valuestring, "Required"));
    params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(params, "required"), "replicas"));
    /* Durations are strings with a pattern; the default is described. */
    p = prop(tool(tools, "logs"), "since");
    assert_true(array_has(cJSON_GetObjectItemCaseSensitive(p, "type"), "string"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "pattern")->valuestring,
                        "^([0-9]+(ms|s|m|h|d))+$");
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(p, "description")->valuestring, "15m"));
    /* The change actions say so in their description. */
    assert_non_null(
        strstr(cJSON_GetObjectItemCaseSensitive(tool(tools, "restart"), "description")->valuestring,
               "approve"));
    /* help has no parameters; clarify / no_action one string each. */
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(tool(tools, "help"), "parameters"), "properties")),
        0);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(prop(tool(tools, "clarify"), "question"), "type")
            ->valuestring,
        "string");
    assert_non_null(prop(tool(tools, "no_action"), "reason"));
    cJSON_Delete(tools);
}

static struct ob_llm_conn conn_openai(void)
{
    struct ob_llm_conn c = {0};

    c.name = S("local");
    c.api = OB_LLM_API_OPENAI;
    c.api_base = S("http://127.0.0.1:11434/v1");
    c.api_key = S("sk-test-123");
    c.model = S("llama3.1");
    c.timeout_ms = 20000;
    c.retries = 2;
    return c;
}

static void test_urls(void **state)
{
    struct ob_llm_conn c = conn_openai();
    char *u;

    (void)state;
    u = ob_llm_url(&c);
    assert_string_equal(u, "http://127.0.0.1:11434/v1/chat/completions");
    free(u);
    c.api = OB_LLM_API_AZURE;
    c.api_base = S("https://res.openai.azure.com");
    c.model = S("gpt-4o-mini");
    c.api_version = S("2024-10-21");
    u = ob_llm_url(&c);
    assert_string_equal(u, "https://res.openai.azure.com/openai/deployments/gpt-4o-mini/"
                           "chat/completions?api-version=2024-10-21");
    free(u);
    c.api_version = S("v1");
    u = ob_llm_url(&c);
    assert_string_equal(u, "https://res.openai.azure.com/openai/v1/chat/completions");
    free(u);
}

static void test_request_body(void **state)
{
    struct ob_llm_conn c = conn_openai();
    struct ob_llm_settings s = {0};
    struct ob_llm_parse_req rq = {0};
    struct ob_redact *red = NULL;
    struct ob_diag d;
    const char *ctx[] = {"dev: checkout is slow again"};
    cJSON *b, *msgs;
    char *body;

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(ob_redact_new(&red, NULL, NULL, &d), 0);
    s.enabled = true;
    s.mode = OB_LLM_LLM_FIRST;
    s.conn = &c;
    s.prompt = S("You are a parser.\n");
    s.max_tokens = 400;
    rq.set = &s;
    rq.cat = fx.cat;
    rq.red = red;
    rq.text = "restart checkout in prod, token xoxb-123456789012-abcdefABCDEF";
    rq.context = ctx;
    rq.ncontext = 1;
    body = ob_llm_request_body(&rq);
    assert_non_null(body);
    /* The token never leaves; neither does the key. */
    assert_null(strstr(body, "xoxb-123456789012"));
    assert_null(strstr(body, "sk-test-123"));
    b = cJSON_Parse(body);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "model")->valuestring, "llama3.1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "tool_choice")->valuestring,
                        "required");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(b, "parallel_tool_calls")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(b, "temperature")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(b, "max_tokens")->valueint, 400);
    assert_null(cJSON_GetObjectItemCaseSensitive(b, "stream"));
    msgs = cJSON_GetObjectItemCaseSensitive(b, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 0), "role")->valuestring,
        "system");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 0), "content")->valuestring,
        "You are a parser.\n");
    assert_non_null(strstr(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 1), "content")->valuestring,
        "context only"));
    assert_non_null(strstr(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 2), "content")->valuestring,
        "restart checkout in prod, token [REDACTED]"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "tools")),
                     (int)fx.cat->n + 2);
    cJSON_Delete(b);
    free(body);
    /* Azure's dated form names the deployment in the URL, not the body. */
    c.api = OB_LLM_API_AZURE;
    c.api_version = S("2024-10-21");
    rq.ncontext = 0;
    body = ob_llm_request_body(&rq);
    b = cJSON_Parse(body);
    assert_null(cJSON_GetObjectItemCaseSensitive(b, "model"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "messages")), 2);
    cJSON_Delete(b);
    free(body);
    ob_redact_free(red);
    ob_diag_release(&d);
}

/* ---- answers ----------------------------------------------------------------- */

static void call(const char *name, const char *args, struct ob_llm_result *r)
{
    memset(r, 0, sizeof(*r));
    ob_llm_tool_call(fx.cat, name, args, r);
}

static void test_valid_call(void **state)
{
    struct ob_llm_result r;
    const struct ob_proposal *p = &r.parse.proposals[0];

    (void)state;
    call("restart", "{\"service\":\"Checkout\",\"env\":\"production\"}", &r);
    assert_int_equal(r.outcome, OB_LLM_PROPOSAL);
    assert_int_equal(r.parse.status, OB_PARSE_OK);
    assert_int_equal(r.parse.n, 1);
    assert_true(r.schema_valid);
    assert_string_equal(r.result, "ok");
    assert_string_equal(p->action->name, "restart");
    assert_string_equal(p->source, "llm");
    assert_string_equal(ob_proposal_get(p, "service"), "checkout");
    assert_string_equal(ob_proposal_get(p, "env"), "prod");
    /* Defaults fill optional values left null; integers may come as numbers. */
    call("logs", "{\"service\":\"cart\",\"env\":\"staging\",\"since\":null,\"filter\":null}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_OK);
    assert_string_equal(ob_proposal_get(p, "since"), "15m");
    assert_null(ob_proposal_get(p, "filter"));
    call("scale", "{\"service\":\"cart\",\"env\":\"dev\",\"replicas\":4}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_OK);
    assert_string_equal(ob_proposal_get(p, "replicas"), "4");
}

static void test_hallucinated_action(void **state)
{
    struct ob_llm_result r;

    (void)state;
    call("drop_database", "{\"name\":\"prod\"}", &r);
    assert_int_equal(r.outcome, OB_LLM_PROPOSAL);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    assert_int_equal(r.parse.n, 0);
    assert_false(r.schema_valid);
    assert_string_equal(r.result, "unknown_action");
    assert_non_null(strstr(r.parse.message, "drop_database"));
    assert_non_null(strstr(r.parse.message, "nothing runs"));
    /* A parameter the action does not have is refused too. */
    call("restart", "{\"service\":\"checkout\",\"env\":\"prod\",\"command\":\"rm -rf /\"}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.parse.message, "command"));
}

static void test_bad_enum(void **state)
{
    struct ob_llm_result r;

    (void)state;
    call("restart", "{\"service\":\"checkout\",\"env\":\"moon\"}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    assert_false(r.schema_valid);
    assert_string_equal(r.result, "invalid");
    assert_non_null(strstr(r.parse.message, "env 'moon' is not valid"));
    assert_non_null(strstr(r.parse.message, "prod, staging, dev"));
}

static void test_int_range(void **state)
{
    struct ob_llm_result r;

    (void)state;
    call("scale", "{\"service\":\"cart\",\"env\":\"prod\",\"replicas\":500}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.parse.message, "at most 50"));
    call("scale", "{\"service\":\"cart\",\"env\":\"prod\",\"replicas\":-1}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    call("scale", "{\"service\":\"cart\",\"env\":\"prod\",\"replicas\":2.5}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    call("scale", "{\"service\":\"cart\",\"env\":\"prod\",\"replicas\":[1,2]}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.parse.message, "single value"));
    call("scale", "{\"service\":\"cart\",\"env\":\"prod\",\"replicas\":\"7\"}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_OK);
}

static void test_shell_characters(void **state)
{
    static const char *const bad[] = {
        "{\"service\":\"checkout; rm -rf /\",\"env\":\"prod\"}",
        "{\"service\":\"checkout$(curl evil)\",\"env\":\"prod\"}",
        "{\"service\":\"checkout`id`\",\"env\":\"prod\"}",
        "{\"service\":\"checkout|nc x 1\",\"env\":\"prod\"}",
        "{\"service\":\"../../etc/passwd\",\"env\":\"prod\"}",
        "{\"service\":\"checkout\\nrm\",\"env\":\"prod\"}",
        "{\"service\":\"checkout\",\"env\":\"prod; reboot\"}",
    };
    struct ob_llm_result r;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call("restart", bad[i], &r);
        if (r.parse.status != OB_PARSE_INVALID)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(r.parse.n, 0);
        /* The message shown in chat carries no control characters. */
        assert_null(strchr(r.parse.message, '\n'));
    }
    /* logs filter has its own pattern. */
    call("logs", "{\"service\":\"cart\",\"env\":\"prod\",\"filter\":\"x' ; cat /etc/shadow\"}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_INVALID);
}

static void test_missing_asks(void **state)
{
    struct ob_llm_result r;
    const struct ob_proposal *p = &r.parse.proposals[0];

    (void)state;
    call("restart", "{\"service\":\"checkout\",\"env\":null}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_ASK);
    assert_true(r.schema_valid);
    assert_string_equal(r.result, "ask");
    assert_non_null(p->missing);
    assert_string_equal(p->missing->name, "env");
    assert_non_null(strstr(r.parse.message, "Which env"));
    call("scale", "{\"service\":null,\"env\":\"prod\",\"replicas\":3}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_ASK);
    assert_string_equal(p->missing->name, "service");
    /* An empty string counts as not given. */
    call("restart", "{\"service\":\"\",\"env\":\"prod\"}", &r);
    assert_int_equal(r.parse.status, OB_PARSE_ASK);
}

static void test_clarify_and_no_action(void **state)
{
    struct ob_llm_result r;
    char args[2000], q[1200];

    (void)state;
    call("clarify", "{\"question\":\"Which service do you mean?\"}", &r);
    assert_int_equal(r.outcome, OB_LLM_CLARIFY);
    assert_string_equal(r.text, "Which service do you mean?");
    assert_true(r.schema_valid);
    /* Long and multi-line questions are capped and flattened. */
    memset(q, 'x', sizeof(q) - 1);
    q[sizeof(q) - 1] = '\0';
    q[10] = '\n';
    snprintf(args, sizeof(args), "{\"question\":\"%s\"}", q);
    args[24] = '\\';
    args[25] = 'n';
    call("clarify", args, &r);
    assert_int_equal(r.outcome, OB_LLM_CLARIFY);
    assert_true(strlen(r.text) <= OB_LLM_QUESTION_MAX);
    assert_null(strchr(r.text, '\n'));
    call("clarify", "{}", &r);
    assert_int_equal(r.outcome, OB_LLM_UNPARSED);
    call("no_action", "{\"reason\":\"small talk\"}", &r);
    assert_int_equal(r.outcome, OB_LLM_NO_ACTION);
    assert_string_equal(r.text, "small talk");
    assert_string_equal(r.result, "no_action");
    /* Malformed arguments: unparsed, never a guess. */
    call("restart", "{\"service\": \"checkout\", \"env\": ", &r);
    assert_int_equal(r.outcome, OB_LLM_UNPARSED);
    assert_false(r.schema_valid);
    call("restart", "[\"checkout\"]", &r);
    assert_int_equal(r.outcome, OB_LLM_UNPARSED);
}

static void answer(const char *body, struct ob_llm_result *r)
{
    memset(r, 0, sizeof(*r));
    ob_llm_answer_parse(fx.cat, body, strlen(body), r);
}

static void test_answer_bodies(void **state)
{
    struct ob_llm_result r;

    (void)state;
    answer("{\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":"
           "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
           "\"function\":{\"name\":\"status\",\"arguments\":\"{\\\"service\\\":\\\"cart\\\","
           "\\\"env\\\":\\\"prod\\\"}\"}}]}}],\"usage\":{\"prompt_tokens\":812,"
           "\"completion_tokens\":41,\"total_tokens\":853}}",
           &r);
    assert_int_equal(r.outcome, OB_LLM_PROPOSAL);
    assert_int_equal(r.parse.status, OB_PARSE_OK);
    assert_true(r.answered);
    assert_int_equal(r.tokens_in, 812);
    assert_int_equal(r.tokens_out, 41);
    assert_string_equal(r.finish_reason, "tool_calls");
    assert_string_equal(r.tool, "status");
    /* finish_reason length: treated as unparsed, even with a tool call. */
    answer("{\"choices\":[{\"finish_reason\":\"length\",\"message\":{\"tool_calls\":[{"
           "\"function\":{\"name\":\"restart\",\"arguments\":\"{\\\"service\\\":\\\"chec\"}}]}}],"
           "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":400}}",
           &r);
    assert_int_equal(r.outcome, OB_LLM_UNPARSED);
    assert_int_equal(r.tokens_out, 400);
    assert_non_null(strstr(r.why, "max_tokens"));
    answer("{\"choices\":[{\"finish_reason\":\"content_filter\",\"message\":{\"content\":null}}]}",
           &r);
    assert_int_equal(r.outcome, OB_LLM_UNAVAILABLE);
    assert_string_equal(r.result, "content_filter");
    /* A server ignoring tool_choice: one JSON object in the content. */
    answer("{\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"content\":\"Sure: "
           "{\\\"name\\\": \\\"status\\\", \\\"arguments\\\": {\\\"service\\\": \\\"cart\\\", "
           "\\\"env\\\": \\\"dev\\\"}}\"}}]}",
           &r);
    assert_int_equal(r.outcome, OB_LLM_PROPOSAL);
    assert_int_equal(r.parse.status, OB_PARSE_OK);
    answer("{\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"content\":\"I would restart "
           "it.\"}}]}",
           &r);
    assert_int_equal(r.outcome, OB_LLM_UNPARSED);
    answer("{\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"refusal\":\"no\"}}]}", &r);
    assert_int_equal(r.outcome, OB_LLM_NO_ACTION);
    answer("<html>bad gateway</html>", &r);
    assert_int_equal(r.outcome, OB_LLM_UNAVAILABLE);
    assert_false(r.answered);
    answer("{\"choices\":[]}", &r);
    assert_int_equal(r.outcome, OB_LLM_UNAVAILABLE);
}

/* ---- cost, versions, retries ---------------------------------------------------- */

static void test_cost(void **state)
{
    struct ob_llm_conn c = conn_openai();

    (void)state;
    assert_true(ob_llm_cost(&c, 1000, 500) == 0);
    c.input_per_1m = 0.15;
    c.output_per_1m = 0.60;
    assert_float_equal(ob_llm_cost(&c, 1000, 500), 0.00045, 1e-12);
    assert_float_equal(ob_llm_cost(&c, 1000000, 0), 0.15, 1e-12);
    assert_float_equal(ob_llm_cost(&c, 0, 1000000), 0.60, 1e-12);
    assert_float_equal(ob_llm_cost(&c, 812, 41), (812 * 0.15 + 41 * 0.60) / 1e6, 1e-15);
    assert_true(ob_llm_cost(NULL, 10, 10) == 0);
}

static void test_prompt_version(void **state)
{
    char v[13], v2[13], path[] = "/tmp/opsbot-prompt-XXXXXX", *text = NULL;
    int fd;

    (void)state;
    /* BLAKE2b-256 known answers, first 12 hex digits. */
    ob_llm_prompt_version("", 0, v);
    assert_string_equal(v, "0e5751c026e5");
    ob_llm_prompt_version("abc", 3, v);
    assert_string_equal(v, "bddd813c6342");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "You are a parser.\n", 18), 18);
    close(fd);
    assert_int_equal(ob_llm_prompt_load(path, &text, v2), 0);
    assert_string_equal(v2, "379031058d89");
    assert_string_equal(text, "You are a parser.\n");
    free(text);
    unlink(path);
    assert_int_not_equal(ob_llm_prompt_load(path, &text, v2), 0);
    assert_null(text);
}

static void test_retry_rules(void **state)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    (void)state;
    assert_true(ob_llm_should_retry(429, NULL));
    assert_true(ob_llm_should_retry(408, NULL));
    assert_true(ob_llm_should_retry(409, NULL));
    assert_true(ob_llm_should_retry(500, NULL));
    assert_true(ob_llm_should_retry(503, NULL));
    assert_true(ob_llm_should_retry(0, NULL));
    assert_false(ob_llm_should_retry(400, NULL));
    assert_false(ob_llm_should_retry(401, NULL));
    assert_false(ob_llm_should_retry(404, NULL));
    assert_false(ob_llm_should_retry(503, "false"));
    assert_true(ob_llm_should_retry(400, "true"));
    /* Server values win when 0 < v <= 60 s: ms first, then seconds. */
    assert_int_equal(ob_llm_retry_delay_ms("200", "9", 0, 0.5, 0), 200);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, "2", 0, 0.5, 0), 2000);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, "1.5", 0, 0.5, 0), 1500);
    assert_int_equal(ob_llm_retry_delay_ms("abc", "3", 0, 0.5, 0), 3000);
    gmtime_r(&(time_t){now + 5}, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, date, 0, 0, (int64_t)now * 1000), 5000);
    /* Out of range values fall back to the backoff: 500 ms * 2^n, cap 8 s,
     * times 0.75 .. 1.0. */
    assert_int_equal(ob_llm_retry_delay_ms("0", NULL, 0, 0, 0), 500);
    assert_int_equal(ob_llm_retry_delay_ms("90000", "120", 0, 0, 0), 500);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, NULL, 0, 1, 0), 375);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, NULL, 1, 0, 0), 1000);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, NULL, 3, 0, 0), 4000);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, NULL, 4, 0, 0), 8000);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, NULL, 30, 0, 0), 8000);
    assert_int_equal(ob_llm_retry_delay_ms(NULL, NULL, 30, 1, 0), 6000);
}

/* ---- configuration and modes ------------------------------------------------------- */

static int load_yaml(const char *yaml, struct ob_llm_config **lc, struct ob_diag *d,
                     struct ob_config **cfg)
{
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s/tests/data/llm/opsbot.yaml", source_root());
    rc = ob_config_load_string(cfg, yaml, path, d);
    if (rc)
        return rc;
    return ob_llm_config_load(lc, *cfg, d);
}

static bool diag_has(const struct ob_diag *d, const char *s)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->lines[i] && strstr(d->lines[i], s))
            return true;
    return false;
}

static void test_config(void **state)
{
    struct ob_llm_config *lc = NULL;
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    char v[13];
    char *text = NULL;

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(
        load_yaml("connections:\n"
                  "  local: {api_type: openai, api_base: \"http://127.0.0.1:11434/v1/\", "
                  "api_key: none, model: llama3.1, timeout: 5s, retries: 1,\n"
                  "          price: {input_per_1m: 0.15, output_per_1m: 0.6}}\n"
                  "  aoai: {api_type: azure, api_base: \"https://r.openai.azure.com\", "
                  "api_key: k, deployment: gpt-4o-mini}\n"
                  "llm:\n  connection: local\n  mode: llm-first\n  prompt: prompt.md\n"
                  "  max_tokens: 300\n  context_messages: 2\n"
                  "  budget: {max_calls_per_minute: 10}\n",
                  &lc, &d, &cfg),
        0);
    assert_int_equal(d.n, 0);
    assert_true(lc->set.enabled);
    assert_int_equal(lc->set.mode, OB_LLM_LLM_FIRST);
    assert_string_equal(lc->set.conn->name, "local");
    assert_string_equal(lc->set.conn->api_base, "http://127.0.0.1:11434/v1");
    assert_int_equal(lc->set.conn->timeout_ms, 5000);
    assert_int_equal(lc->set.conn->retries, 1);
    assert_float_equal(lc->set.conn->input_per_1m, 0.15, 1e-12);
    assert_int_equal(lc->set.max_tokens, 300);
    assert_int_equal(lc->set.context_messages, 2);
    assert_int_equal(lc->set.max_calls_per_minute, 10);
    assert_int_equal(ob_llm_prompt_load(lc->set.prompt_path, &text, v), 0);
    assert_string_equal(v, lc->set.prompt_version);
    free(text);
    assert_int_equal(ob_llm_conn_find(lc, "aoai")->api, OB_LLM_API_AZURE);
    assert_string_equal(ob_llm_conn_find(lc, "aoai")->api_version, "2024-10-21");
    assert_string_equal(ob_llm_conn_find(lc, "aoai")->model, "gpt-4o-mini");
    ob_llm_config_free(lc);
    ob_config_free(cfg);
    /* No llm: section: rules only. */
    lc = NULL;
    assert_int_equal(load_yaml("bot: {name: x}\n", &lc, &d, &cfg), 0);
    assert_false(lc->set.enabled);
    assert_int_equal(lc->set.mode, OB_LLM_RULES_ONLY);
    ob_llm_config_free(lc);
    ob_config_free(cfg);
    /* Every problem with file:line, never the key. */
    lc = NULL;
    assert_int_equal(load_yaml("connections:\n"
                               "  a: {api_type: bedrock, api_base: \"http://x\", model: m}\n"
                               "  b: {api_base: \"ftp://x\", api_key: sk-SECRET-1, model: m}\n"
                               "  c: {api_type: azure, api_base: \"https://x\", model: m}\n"
                               "  d: {api_base: \"http://x\", model: m, retries: 99, colour: red}\n"
                               "llm: {connection: nope, mode: sometimes, prompt: missing.md}\n",
                               &lc, &d, &cfg),
                     OB_ECONFIG);
    assert_null(lc);
    assert_true(diag_has(&d, "opsbot.yaml:2: connections.a.api_type: unknown API type"));
    assert_true(diag_has(&d, "opsbot.yaml:3: connections.b.api_base: must start with http"));
    assert_true(diag_has(&d, "connections.c.deployment: missing required key"));
    assert_true(diag_has(&d, "connections.c.api_key: required for api_type azure"));
    assert_true(diag_has(&d, "connections.c.model: not used with api_type azure"));
    assert_true(diag_has(&d, "retries"));
    assert_true(diag_has(&d, "connections.d.colour: unknown key"));
    assert_true(diag_has(&d, "opsbot.yaml:6: llm.connection: no connection named 'nope'"));
    assert_true(diag_has(&d, "llm.mode: unknown mode 'sometimes'"));
    assert_true(diag_has(&d, "llm.prompt: cannot read"));
    for (size_t i = 0; i < d.n; i++)
        assert_null(strstr(d.lines[i], "sk-SECRET-1"));
    ob_config_free(cfg);
    ob_diag_release(&d);
    ob_diag_init(&d);
    assert_int_equal(load_yaml("llm: {mode: llm-first}\n", &lc, &d, &cfg), OB_ECONFIG);
    assert_true(diag_has(&d, "llm.connection: missing required key"));
    assert_true(diag_has(&d, "llm.prompt: missing required key"));
    ob_config_free(cfg);
    ob_diag_release(&d);
}

static void test_modes(void **state)
{
    struct ob_llm_conn c = conn_openai();
    struct ob_llm_settings s = {0};
    struct ob_parse_result none = {0}, ok = {0};
    struct ob_llm_result lr = {0};
    enum ob_llm_mode m;

    (void)state;
    ok.status = OB_PARSE_OK;
    none.status = OB_PARSE_NONE;
    s.conn = &c;
    s.enabled = true;
    s.mode = OB_LLM_RULES_FIRST;
    assert_true(ob_llm_wanted(&s, "payments keeps throwing 500s, roll it back", &none));
    assert_false(ob_llm_wanted(&s, "restart checkout in prod", &ok));
    s.mode = OB_LLM_LLM_FIRST;
    assert_true(ob_llm_wanted(&s, "restart checkout in prod", &ok));
    /* The explicit grammar never goes to the model. */
    assert_false(ob_llm_wanted(&s, "  !restart checkout env=prod", &ok));
    assert_true(ob_llm_wanted(&s, "!!! wow", &none));
    s.mode = OB_LLM_RULES_ONLY;
    assert_false(ob_llm_wanted(&s, "anything", &none));
    assert_false(ob_llm_wanted(NULL, "anything", &none));
    lr.outcome = OB_LLM_UNAVAILABLE;
    assert_true(ob_llm_falls_back(&lr));
    lr.outcome = OB_LLM_UNPARSED;
    assert_true(ob_llm_falls_back(&lr));
    lr.outcome = OB_LLM_NO_ACTION;
    assert_false(ob_llm_falls_back(&lr));
    assert_int_equal(ob_llm_mode_parse("llm-first", &m), 0);
    assert_int_equal(m, OB_LLM_LLM_FIRST);
    assert_int_equal(ob_llm_mode_parse("LLM", &m), OB_EINVAL);
    assert_string_equal(ob_llm_mode_name(OB_LLM_RULES_FIRST), "rules-first");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_from_catalog),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_valid_call),
        cmocka_unit_test(test_hallucinated_action),
        cmocka_unit_test(test_bad_enum),
        cmocka_unit_test(test_int_range),
        cmocka_unit_test(test_shell_characters),
        cmocka_unit_test(test_missing_asks),
        cmocka_unit_test(test_clarify_and_no_action),
        cmocka_unit_test(test_answer_bodies),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_prompt_version),
        cmocka_unit_test(test_retry_rules),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_modes),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
