/* The `connections:` and `llm:` sections, the prompt file and its version. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/llm.h"
#include "opsbot/util.h"

#define PROMPT_MAX (256 * 1024)
#define MAX_CONNS 32

static const char *const conn_keys[] = {"api_type",   "api_base", "api_key", "api_version", "model",
                                        "deployment", "timeout",  "retries", "price",       NULL};
static const char *const price_keys[] = {"input_per_1m", "output_per_1m", NULL};
static const char *const llm_keys[] = {"connection",       "mode",        "prompt", "max_tokens",
                                       "context_messages", "temperature", "budget", NULL};
static const char *const budget_keys[] = {"max_calls_per_minute", NULL};

static const char *const mode_names[] = {"rules-only", "rules-first", "llm-first"};

int ob_llm_mode_parse(const char *s, enum ob_llm_mode *out)
{
    for (int i = 0; i < 3; i++) {
        if (s && !strcmp(s, mode_names[i])) {
            *out = (enum ob_llm_mode)i;
            return 0;
        }
    }
    return OB_EINVAL;
}

const char *ob_llm_mode_name(enum ob_llm_mode m)
{
    return (unsigned)m < 3 ? mode_names[m] : "?";
}

void ob_llm_prompt_version(const char *text, size_t len, char out[13])
{
    unsigned char h[32];
    char hex[65];

    crypto_generichash(h, sizeof(h), (const unsigned char *)text, len, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    memcpy(out, hex, 12);
    out[12] = '\0';
}

int ob_llm_prompt_load(const char *path, char **text, char version[13])
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    int rc = 0;

    *text = NULL;
    if (!f)
        return -errno;
    buf = malloc(PROMPT_MAX + 1);
    if (!buf) {
        rc = OB_ENOMEM;
        goto out;
    }
    n = fread(buf, 1, PROMPT_MAX + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        goto out;
    }
    if (n > PROMPT_MAX) {
        rc = OB_E2BIG;
        goto out;
    }
    buf[n] = '\0';
    if (!ob_utf8_valid(buf, n)) {
        rc = OB_EUTF8;
        goto out;
    }
    ob_llm_prompt_version(buf, n, version);
    *text = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* A number (or a string holding one) >= 0 into *out. */
static int cfg_price(const struct ob_config *cfg, const cJSON *obj, const char *key,
                     const char *path, double *out, struct ob_diag *d)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char where[300], *end = NULL;
    double v;

    *out = 0;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (cJSON_IsNumber(it)) {
        v = it->valuedouble;
    } else if (cJSON_IsString(it) && *it->valuestring) {
        errno = 0;
        v = strtod(it->valuestring, &end);
        if (errno || *end)
            goto bad;
    } else {
        goto bad;
    }
    if (!(v >= 0 && v < 1e6))
        goto bad;
    *out = v;
    return 0;
bad:
    ob_diag_addf(d, "%s: %s.%s: expected a price in USD per 1M tokens (a number >= 0)",
                 ob_config_where(cfg, it, where, sizeof(where)), path, key);
    return OB_ECONFIG;
}

static char *strip_slash(const char *s)
{
    char *c = ob_xstrdup(s);
    size_t n = strlen(c);

    while (n && c[n - 1] == '/')
        c[--n] = '\0';
    return c;
}

static int load_conn(const struct ob_config *cfg, const cJSON *node, struct ob_llm_conn *c,
                     struct ob_diag *d)
{
    char path[160], where[300];
    const char *type = "openai", *base = NULL, *key = "", *version = NULL, *model = NULL,
               *deployment = NULL;
    int64_t v;
    size_t before = d->n;
    const cJSON *price;

    snprintf(path, sizeof(path), "connections.%s", node->string);
    c->name = ob_xstrdup(node->string);
    ob_config_where(cfg, node, c->where, sizeof(c->where));
    if (!cJSON_IsObject(node)) {
        ob_diag_addf(d, "%s: %s: expected a mapping", c->where, path);
        return OB_ECONFIG;
    }
    ob_cfg_check_keys(cfg, node, conn_keys, path, d);
    ob_cfg_string(cfg, node, "api_type", false, "openai", &type, d);
    if (type && !strcmp(type, "azure")) {
        c->api = OB_LLM_API_AZURE;
    } else if (type && strcmp(type, "openai")) {
        ob_diag_addf(d, "%s: %s.api_type: unknown API type '%s' (known: openai, azure)",
                     ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(node, "api_type"), where,
                                     sizeof(where)),
                     path, type);
    }
    if (!ob_cfg_string(cfg, node, "api_base", true, NULL, &base, d) && base) {
        if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))
            ob_diag_addf(d, "%s: %s.api_base: must start with http:// or https:// (got '%.80s')",
                         ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(node, "api_base"),
                                         where, sizeof(where)),
                         path, base);
        else
            c->api_base = strip_slash(base);
    }
    ob_cfg_string(cfg, node, "api_key", false, "", &key, d);
    if (key && strpbrk(key, "\r\n"))
        ob_diag_addf(d, "%s: %s.api_key: contains a line break",
                     ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(node, "api_key"), where,
                                     sizeof(where)),
                     path);
    else
        c->api_key = ob_xstrdup(key ? key : "");
    ob_cfg_string(cfg, node, "api_version", false, NULL, &version, d);
    ob_cfg_string(cfg, node, "model", false, NULL, &model, d);
    ob_cfg_string(cfg, node, "deployment", false, NULL, &deployment, d);
    if (c->api == OB_LLM_API_OPENAI) {
        if (deployment)
            ob_diag_addf(d, "%s: %s.deployment: only for api_type azure (use model)", c->where,
                         path);
        if (version)
            ob_diag_addf(d, "%s: %s.api_version: only for api_type azure", c->where, path);
        if (!model || !*model)
            ob_diag_addf(d, "%s: %s.model: missing required key (the model name)", c->where, path);
        else
            c->model = ob_xstrdup(model);
    } else {
        if (!deployment || !*deployment)
            ob_diag_addf(d, "%s: %s.deployment: missing required key (the Azure deployment name)",
                         c->where, path);
        else
            c->model = ob_xstrdup(deployment);
        if (model)
            ob_diag_addf(d, "%s: %s.model: not used with api_type azure (use deployment)", c->where,
                         path);
        if (!c->api_key || !*c->api_key)
            ob_diag_addf(d, "%s: %s.api_key: required for api_type azure", c->where, path);
        c->api_version = ob_xstrdup(version && *version ? version : "2024-10-21");
        for (const char *p = c->api_version; *p; p++) {
            if (!(*p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'))) {
                ob_diag_addf(d,
                             "%s: %s.api_version: '%.40s' is not an API version (e.g. "
                             "2024-10-21 or v1)",
                             c->where, path, c->api_version);
                break;
            }
        }
    }
    if (c->model && strpbrk(c->model, "/?#% \t\r\n"))
        ob_diag_addf(d, "%s: %s: '%.80s' is not a valid model or deployment name", c->where, path,
                     c->model);
    c->timeout_ms = 20000;
    if (!ob_cfg_duration(cfg, node, "timeout", false, 20000, &c->timeout_ms, d) &&
        (c->timeout_ms < 1000 || c->timeout_ms > 600000))
        ob_diag_addf(d, "%s: %s.timeout: must be between 1s and 10m", c->where, path);
    if (!ob_cfg_int(cfg, node, "retries", false, 2, 0, 10, &v, d))
        c->retries = (int)v;
    price = cJSON_GetObjectItemCaseSensitive(node, "price");
    if (price && !cJSON_IsNull(price)) {
        char ppath[200];

        snprintf(ppath, sizeof(ppath), "%s.price", path);
        if (!cJSON_IsObject(price)) {
            ob_diag_addf(d, "%s: %s: expected a mapping {input_per_1m, output_per_1m}",
                         ob_config_where(cfg, price, where, sizeof(where)), ppath);
        } else {
            ob_cfg_check_keys(cfg, price, price_keys, ppath, d);
            cfg_price(cfg, price, "input_per_1m", ppath, &c->input_per_1m, d);
            cfg_price(cfg, price, "output_per_1m", ppath, &c->output_per_1m, d);
        }
    }
    return d->n > before ? OB_ECONFIG : 0;
}

static void conn_release(struct ob_llm_conn *c)
{
    free(c->name);
    free(c->api_base);
    if (c->api_key)
        sodium_memzero(c->api_key, strlen(c->api_key));
    free(c->api_key);
    free(c->api_version);
    free(c->model);
}

void ob_llm_config_free(struct ob_llm_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nconns; i++)
        conn_release(&c->conns[i]);
    free(c->conns);
    free(c->set.prompt_path);
    free(c->set.prompt);
    free(c);
}

const struct ob_llm_conn *ob_llm_conn_find(const struct ob_llm_config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->nconns; i++)
        if (!strcmp(c->conns[i].name, name))
            return &c->conns[i];
    return NULL;
}

static void load_llm(const struct ob_config *cfg, const cJSON *s, struct ob_llm_config *c,
                     struct ob_diag *d)
{
    struct ob_llm_settings *set = &c->set;
    const char *conn = NULL, *mode = "rules-first", *prompt = NULL;
    char where[300];
    const cJSON *it;
    int64_t v;

    ob_config_where(cfg, s, where, sizeof(where));
    ob_cfg_check_keys(cfg, s, llm_keys, "llm", d);
    if (!ob_cfg_string(cfg, s, "mode", false, "rules-first", &mode, d) &&
        ob_llm_mode_parse(mode, &set->mode))
        ob_diag_addf(
            d,
            "%s: llm.mode: unknown mode '%s' (known: rules-only, rules-first, "
            "llm-first)",
            ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(s, "mode"), where, sizeof(where)),
            mode);
    ob_cfg_string(cfg, s, "connection", false, NULL, &conn, d);
    if (conn) {
        set->conn = ob_llm_conn_find(c, conn);
        if (!set->conn) {
            char known[256] = "";

            for (size_t i = 0; i < c->nconns; i++) {
                strncat(known, i ? ", " : "", sizeof(known) - strlen(known) - 1);
                strncat(known, c->conns[i].name, sizeof(known) - strlen(known) - 1);
            }
            ob_diag_addf(d, "%s: llm.connection: no connection named '%s' (connections: %s)",
                         ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(s, "connection"),
                                         where, sizeof(where)),
                         conn, known[0] ? known : "none defined");
        }
    } else if (set->mode != OB_LLM_RULES_ONLY) {
        ob_diag_addf(d, "%s: llm.connection: missing required key (mode %s uses the LLM)",
                     ob_config_where(cfg, s, where, sizeof(where)), ob_llm_mode_name(set->mode));
    }
    ob_cfg_string(cfg, s, "prompt", false, NULL, &prompt, d);
    if (prompt) {
        int rc;

        set->prompt_path = ob_config_path(cfg, prompt);
        rc = set->prompt_path
                 ? ob_llm_prompt_load(set->prompt_path, &set->prompt, set->prompt_version)
                 : OB_ENOMEM;
        if (rc)
            ob_diag_addf(d, "%s: llm.prompt: cannot read %s: %s",
                         ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(s, "prompt"), where,
                                         sizeof(where)),
                         set->prompt_path ? set->prompt_path : prompt, ob_strerror(rc));
    } else if (set->mode != OB_LLM_RULES_ONLY) {
        ob_diag_addf(d,
                     "%s: llm.prompt: missing required key (the system prompt file, e.g. "
                     "intents/prompts/parser.md)",
                     ob_config_where(cfg, s, where, sizeof(where)));
    }
    if (!ob_cfg_int(cfg, s, "max_tokens", false, 400, 16, 4096, &v, d))
        set->max_tokens = (int)v;
    if (!ob_cfg_int(cfg, s, "context_messages", false, 0, 0, OB_LLM_CONTEXT_MAX, &v, d))
        set->context_messages = (int)v;
    it = cJSON_GetObjectItemCaseSensitive(s, "temperature");
    if (it && !(cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= 2))
        ob_diag_addf(d, "%s: llm.temperature: expected a number from 0 to 2",
                     ob_config_where(cfg, it, where, sizeof(where)));
    else if (it)
        set->temperature = it->valuedouble;
    it = cJSON_GetObjectItemCaseSensitive(s, "budget");
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsObject(it)) {
            ob_diag_addf(d, "%s: llm.budget: expected a mapping {max_calls_per_minute}",
                         ob_config_where(cfg, it, where, sizeof(where)));
        } else {
            ob_cfg_check_keys(cfg, it, budget_keys, "llm.budget", d);
            if (!ob_cfg_int(cfg, it, "max_calls_per_minute", false, 0, 0, 100000, &v, d))
                set->max_calls_per_minute = (int)v;
        }
    }
    set->enabled = set->mode != OB_LLM_RULES_ONLY;
}

int ob_llm_config_load(struct ob_llm_config **out, const struct ob_config *cfg, struct ob_diag *d)
{
    const cJSON *root = ob_config_root(cfg), *conns, *llm, *it;
    struct ob_llm_config *c = ob_xcalloc(1, sizeof(*c));
    size_t before = d->n;
    char where[300];

    *out = NULL;
    c->set.max_tokens = 400;
    conns = cJSON_GetObjectItemCaseSensitive(root, "connections");
    if (conns && !cJSON_IsNull(conns) && !cJSON_IsObject(conns)) {
        ob_diag_addf(d, "%s: connections: expected a mapping of named connections",
                     ob_config_where(cfg, conns, where, sizeof(where)));
    } else if (conns) {
        size_t n = (size_t)cJSON_GetArraySize(conns);

        if (n > MAX_CONNS) {
            ob_diag_addf(d, "%s: connections: at most %d connections",
                         ob_config_where(cfg, conns, where, sizeof(where)), MAX_CONNS);
            n = MAX_CONNS;
        }
        c->conns = ob_xcalloc(n ? n : 1, sizeof(*c->conns));
        cJSON_ArrayForEach(it, conns)
        {
            if (c->nconns == n)
                break;
            load_conn(cfg, it, &c->conns[c->nconns++], d);
        }
    }
    llm = cJSON_GetObjectItemCaseSensitive(root, "llm");
    if (llm && !cJSON_IsNull(llm) && !cJSON_IsObject(llm))
        ob_diag_addf(d, "%s: llm: expected a mapping",
                     ob_config_where(cfg, llm, where, sizeof(where)));
    else if (llm)
        load_llm(cfg, llm, c, d);
    if (d->n > before) {
        ob_llm_config_free(c);
        return OB_ECONFIG;
    }
    *out = c;
    return 0;
}
