/* The model's answer: a chat-completion body into a validated proposal.
 * Nothing here trusts the model: tool names are looked up in the catalog,
 * arguments are parsed as data and every value goes through
 * ob_param_validate, like the rules' captures. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "opsbot/json.h"
#include "opsbot/llm.h"
#include "opsbot/util.h"

#define VALUE_LEN 256

static void set_out(struct ob_llm_result *r, enum ob_llm_outcome o, const char *result)
{
    r->outcome = o;
    ob_strlcpy(r->result, result, sizeof(r->result));
}

static void __attribute__((format(printf, 2, 3)))
invalid(struct ob_llm_result *r, const char *fmt, ...)
{
    va_list ap;

    memset(&r->parse, 0, sizeof(r->parse));
    r->parse.status = OB_PARSE_INVALID;
    va_start(ap, fmt);
    vsnprintf(r->parse.message, sizeof(r->parse.message), fmt, ap);
    va_end(ap);
    r->outcome = OB_LLM_PROPOSAL;
    r->schema_valid = false;
    if (!r->result[0])
        ob_strlcpy(r->result, "invalid", sizeof(r->result));
}

/* Printable, single-line, capped copy (model text shown to people). */
static void tame(char *dst, size_t cap, const char *src)
{
    size_t o = 0, i = 0, n = strlen(src);

    while (i < n && o + 1 < cap) {
        size_t k = ob_utf8_seq(src + i, n - i);

        if (!k) {
            i++;
            continue;
        }
        if (k == 1 && ((unsigned char)src[i] < 0x20 || src[i] == 0x7f)) {
            if (o && dst[o - 1] != ' ')
                dst[o++] = ' ';
            i++;
            continue;
        }
        if (o + k >= cap)
            break;
        memcpy(dst + o, src + i, k);
        o += k;
        i += k;
    }
    while (o && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* A value as shown in messages: cut and without control characters. */
static const char *shown(const char *v, char *buf, size_t len)
{
    tame(buf, len > 48 ? 48 : len, v);
    if (strlen(v) > strlen(buf) && len > 52)
        strcat(buf, "…");
    return buf;
}

static int validate(const struct ob_param_def *p, const char *raw, char *canon, char *why,
                    size_t whylen)
{
    char low[VALUE_LEN], why2[8];
    size_t i;
    int rc = ob_param_validate(p, raw, canon, VALUE_LEN, why, whylen);

    if (rc == 0 || p->type != OB_PARAM_STRING)
        return rc;
    for (i = 0; raw[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)tolower((unsigned char)raw[i]);
    low[i] = '\0';
    if (!strcmp(low, raw))
        return rc;
    if (ob_param_validate(p, low, canon, VALUE_LEN, why2, sizeof(why2)) == 0)
        return 0;
    return rc;
}

/* One argument value as text; false when it is not a scalar. */
static bool scalar_text(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= len)
            return false;
        ob_strlcpy(buf, v->valuestring, len);
        return true;
    }
    if (cJSON_IsNumber(v)) {
        ob_json_num_text(v->valuedouble, buf, len);
        return true;
    }
    return false;
}

static void action_call(const struct ob_action *a, const cJSON *args, struct ob_llm_result *r)
{
    struct ob_proposal *prop;
    const cJSON *it;
    char canon[OB_MAX_PARAMS][VALUE_LEN];
    bool have[OB_MAX_PARAMS] = {false};
    char raw[VALUE_LEN], why[300], sh[64];

    cJSON_ArrayForEach(it, args)
    {
        if (!ob_action_param(a, it->string)) {
            invalid(r, "the model gave a parameter %s does not have ('%s'): nothing runs", a->name,
                    shown(it->string, sh, sizeof(sh)));
            return;
        }
    }
    for (size_t i = 0; i < a->nparams && i < OB_MAX_PARAMS; i++) {
        const struct ob_param_def *p = &a->params[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, p->name);

        if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !*v->valuestring)) {
            if (p->def) {
                ob_strlcpy(canon[i], p->def, VALUE_LEN);
                have[i] = true;
            }
            continue;
        }
        if (!scalar_text(v, raw, sizeof(raw))) {
            invalid(r, "%s is not valid: %s", p->name,
                    cJSON_IsString(v) ? "too long" : "must be a single value");
            return;
        }
        if (validate(p, raw, canon[i], why, sizeof(why))) {
            invalid(r, "%s '%s' is not valid: %s", p->name, shown(raw, sh, sizeof(sh)), why);
            return;
        }
        have[i] = true;
    }
    memset(&r->parse, 0, sizeof(r->parse));
    prop = &r->parse.proposals[0];
    prop->action = a;
    prop->source = "llm";
    prop->confidence = 0;
    for (size_t i = 0; i < a->nparams && i < OB_MAX_PARAMS; i++) {
        if (!have[i])
            continue;
        ob_strlcpy(prop->params[prop->nparams].name, a->params[i].name,
                   sizeof(prop->params[0].name));
        ob_strlcpy(prop->params[prop->nparams].value, canon[i], sizeof(prop->params[0].value));
        prop->nparams++;
    }
    for (size_t i = 0; i < a->nparams && i < OB_MAX_PARAMS; i++) {
        if (a->params[i].required && !have[i]) {
            prop->missing = &a->params[i];
            break;
        }
    }
    r->parse.n = 1;
    r->outcome = OB_LLM_PROPOSAL;
    r->schema_valid = true;
    if (prop->missing) {
        r->parse.status = OB_PARSE_ASK;
        ob_intent_question(prop, r->parse.message, sizeof(r->parse.message));
        ob_strlcpy(r->result, "ask", sizeof(r->result));
    } else {
        r->parse.status = OB_PARSE_OK;
        ob_strlcpy(r->result, "ok", sizeof(r->result));
    }
}

/* The one string argument of clarify / no_action, or NULL. */
static const char *string_arg(const cJSON *args, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);

    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

void ob_llm_tool_call(const struct ob_catalog *cat, const char *name, const char *arguments,
                      struct ob_llm_result *r)
{
    const struct ob_action *a;
    cJSON *args = NULL;
    const char *s;
    char sh[64];

    r->result[0] = '\0';
    r->schema_valid = false;
    tame(r->tool, sizeof(r->tool), name ? name : "");
    if (!name || !*name) {
        set_out(r, OB_LLM_UNPARSED, "unparsed");
        snprintf(r->why, sizeof(r->why), "the model's tool call has no name");
        return;
    }
    if (arguments && *arguments)
        args = cJSON_ParseWithLength(arguments, strnlen(arguments, 64 * 1024));
    else
        args = cJSON_CreateObject();
    if (!strcmp(name, "no_action")) {
        set_out(r, OB_LLM_NO_ACTION, "no_action");
        s = string_arg(args, "reason");
        tame(r->text, sizeof(r->text), s ? s : "");
        r->schema_valid = cJSON_IsObject(args) && s;
        goto out;
    }
    if (!cJSON_IsObject(args)) {
        set_out(r, OB_LLM_UNPARSED, "unparsed");
        snprintf(r->why, sizeof(r->why), "the model's arguments for %s are not a JSON object",
                 shown(name, sh, sizeof(sh)));
        goto out;
    }
    if (!strcmp(name, "clarify")) {
        s = string_arg(args, "question");
        if (!s) {
            set_out(r, OB_LLM_UNPARSED, "unparsed");
            snprintf(r->why, sizeof(r->why), "the model asked to clarify without a question");
            goto out;
        }
        set_out(r, OB_LLM_CLARIFY, "clarify");
        tame(r->text, sizeof(r->text), s);
        r->schema_valid = true;
        goto out;
    }
    a = ob_catalog_find(cat, name);
    if (!a) {
        ob_strlcpy(r->result, "unknown_action", sizeof(r->result));
        invalid(r, "the model proposed '%s', which is not an action I have: nothing runs",
                shown(name, sh, sizeof(sh)));
        goto out;
    }
    action_call(a, args, r);
out:
    cJSON_Delete(args);
}

/* Servers that ignore tool_choice answer with text; accept one JSON object
 * {"name": ..., "arguments"|"parameters": {...}} in it, nothing else. */
static bool tool_in_content(const struct ob_catalog *cat, const char *content,
                            struct ob_llm_result *r)
{
    const char *b = strchr(content, '{'), *e = strrchr(content, '}');
    cJSON *o, *args;
    const cJSON *name;
    char *text;
    bool ok = false;

    if (!b || !e || e < b)
        return false;
    o = cJSON_ParseWithLength(b, (size_t)(e - b + 1));
    name = cJSON_GetObjectItemCaseSensitive(o, "name");
    args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args)
        args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (cJSON_IsString(name) && (cJSON_IsObject(args) || cJSON_IsString(args))) {
        text = cJSON_IsString(args) ? NULL : cJSON_PrintUnformatted(args);
        ob_llm_tool_call(cat, name->valuestring, text ? text : args->valuestring, r);
        free(text);
        ok = true;
    }
    cJSON_Delete(o);
    return ok;
}

void ob_llm_answer_parse(const struct ob_catalog *cat, const char *body, size_t len,
                         struct ob_llm_result *r)
{
    cJSON *root = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
    const cJSON *usage, *choice, *msg, *calls, *fr, *v;

    memset(&r->parse, 0, sizeof(r->parse));
    r->text[0] = r->why[0] = r->tool[0] = r->finish_reason[0] = '\0';
    r->schema_valid = false;
    if (!cJSON_IsObject(root)) {
        set_out(r, OB_LLM_UNAVAILABLE, "error");
        snprintf(r->why, sizeof(r->why), "the server's answer is not JSON");
        goto out;
    }
    usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    v = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e12)
        r->tokens_in = (int64_t)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e12)
        r->tokens_out = (int64_t)v->valuedouble;
    choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    if (!cJSON_IsObject(choice)) {
        set_out(r, OB_LLM_UNAVAILABLE, "error");
        snprintf(r->why, sizeof(r->why), "the server's answer has no choices");
        goto out;
    }
    r->answered = true;
    fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(fr))
        tame(r->finish_reason, sizeof(r->finish_reason), fr->valuestring);
    if (!strcmp(r->finish_reason, "content_filter")) {
        set_out(r, OB_LLM_UNAVAILABLE, "content_filter");
        snprintf(r->why, sizeof(r->why), "the answer was withheld by the content filter");
        goto out;
    }
    if (!strcmp(r->finish_reason, "length")) {
        set_out(r, OB_LLM_UNPARSED, "unparsed");
        snprintf(r->why, sizeof(r->why), "the answer was cut off at max_tokens");
        goto out;
    }
    msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0) {
        const cJSON *fn =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(calls, 0), "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        char *printed = NULL;

        if (cJSON_IsObject(args))
            printed = cJSON_PrintUnformatted(args);
        ob_llm_tool_call(cat, cJSON_IsString(name) ? name->valuestring : NULL,
                         printed                ? printed
                         : cJSON_IsString(args) ? args->valuestring
                                                : NULL,
                         r);
        free(printed);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(msg, "refusal");
    if (cJSON_IsString(v) && *v->valuestring) {
        set_out(r, OB_LLM_NO_ACTION, "no_action");
        tame(r->text, sizeof(r->text), v->valuestring);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(v) && tool_in_content(cat, v->valuestring, r))
        goto out;
    set_out(r, OB_LLM_UNPARSED, "unparsed");
    snprintf(r->why, sizeof(r->why), "the model answered without a tool call");
out:
    cJSON_Delete(root);
}

double ob_llm_cost(const struct ob_llm_conn *c, int64_t tokens_in, int64_t tokens_out)
{
    if (!c)
        return 0;
    return ((double)tokens_in * c->input_per_1m + (double)tokens_out * c->output_per_1m) / 1e6;
}

bool ob_llm_should_retry(long status, const char *x_should_retry)
{
    if (x_should_retry && !strcasecmp(x_should_retry, "true"))
        return true;
    if (x_should_retry && !strcasecmp(x_should_retry, "false"))
        return false;
    return status == 0 || status == 408 || status == 409 || status == 429 || status >= 500;
}

int64_t ob_llm_retry_delay_ms(const char *retry_after_ms, const char *retry_after, int attempt,
                              double jitter01, int64_t now_ms)
{
    double v = -1, base;
    char *end = NULL;

    if (retry_after_ms && *retry_after_ms) {
        v = strtod(retry_after_ms, &end);
        if (end == retry_after_ms || *end || !(v > 0 && v <= 60000))
            v = -1;
    }
    if (v < 0 && retry_after && *retry_after) {
        v = strtod(retry_after, &end);
        if (end != retry_after && !*end) {
            v *= 1000;
        } else {
            struct tm tm = {0};
            const char *rest = strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);

            v = rest && !*rest ? (double)timegm(&tm) * 1000 - (double)now_ms : -1;
        }
        if (!(v > 0 && v <= 60000))
            v = -1;
    }
    if (v > 0)
        return (int64_t)ceil(v);
    if (attempt < 0)
        attempt = 0;
    base = attempt >= 5 ? 8000 : fmin(500.0 * (double)(1 << attempt), 8000);
    if (!(jitter01 >= 0))
        jitter01 = 0;
    if (jitter01 > 1)
        jitter01 = 1;
    return (int64_t)(base * (1.0 - 0.25 * jitter01));
}

bool ob_llm_wanted(const struct ob_llm_settings *s, const char *text,
                   const struct ob_parse_result *rules)
{
    if (!s || !s->enabled || !s->conn || s->mode == OB_LLM_RULES_ONLY || !text)
        return false;
    while (isspace((unsigned char)*text))
        text++;
    if (text[0] == '!' && isalpha((unsigned char)text[1]))
        return false;
    if (s->mode == OB_LLM_RULES_FIRST)
        return !rules || rules->status == OB_PARSE_NONE;
    return true;
}

bool ob_llm_falls_back(const struct ob_llm_result *lr)
{
    return !lr || lr->outcome == OB_LLM_UNPARSED || lr->outcome == OB_LLM_UNAVAILABLE;
}
