#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/platform.h"
#include "opsbot/util.h"

static const char *const top_keys[] = {"bot",     "log",      "exec", "redact",  "platforms",
                                       "actions", "policies", "llm",  "metrics", "connections",
                                       "targets", "diagnose", NULL};
static const char *const bot_keys[] = {
    "name",        "state",           "echo", "max_message_bytes", "shutdown_grace",
    "ask_timeout", "chat_output_cap", NULL};
static const char *const log_keys[] = {"level", NULL};
static const char *const exec_keys[] = {"max_concurrency", "output_cap", "kill_grace",
                                        "env_allow",       "dry_run",    NULL};
static const char *const redact_keys[] = {"patterns", NULL};
static const char *const console_keys[] = {"user", "channel", NULL};
static const char *const policies_keys[] = {"include", NULL};
static const char *const metrics_keys[] = {"listen", NULL};

static const cJSON *section(const struct ob_config *cfg, const cJSON *root, const char *key,
                            const char *const allowed[], struct ob_diag *d)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, key);
    char where[300];

    if (!s || cJSON_IsNull(s))
        return NULL;
    if (!cJSON_IsObject(s)) {
        ob_diag_addf(d, "%s: %s: expected a mapping", ob_config_where(cfg, s, where, sizeof(where)),
                     key);
        return NULL;
    }
    ob_cfg_check_keys(cfg, s, allowed, key, d);
    return s;
}

/* "host:port", ":port" or "[v6]:port" with a port 0..65535. */
static bool listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long port;

    if (!colon || !colon[1] || strlen(s) > 255)
        return false;
    if (s[0] == '[' && (colon == s || colon[-1] != ']'))
        return false;
    port = strtol(colon + 1, &end, 10);
    return !*end && port >= 0 && port <= 65535;
}

static void load_metrics(struct ob_bundle *b, const cJSON *root, struct ob_diag *d)
{
    const cJSON *s = section(b->cfg, root, "metrics", metrics_keys, d);
    const char *listen = NULL;
    char where[300];

    if (!s || ob_cfg_string(b->cfg, s, "listen", false, NULL, &listen, d) || !listen)
        return;
    if (!listen_ok(listen)) {
        ob_diag_addf(d, "%s: metrics.listen: '%.80s' is not host:port (e.g. 127.0.0.1:9464)",
                     ob_config_where(b->cfg, cJSON_GetObjectItemCaseSensitive(s, "listen"), where,
                                     sizeof(where)),
                     listen);
        return;
    }
    b->metrics_listen = listen;
}

static void load_options(struct ob_bundle *b, struct ob_diag *d)
{
    const struct ob_config *cfg = b->cfg;
    const cJSON *root = ob_config_root(cfg), *s, *list;
    const char *state = "./opsbot.db", *echo = "steps", *level = "info";
    int64_t v;
    char where[300];

    ob_cfg_check_keys(cfg, root, top_keys, "", d);
    b->name = "opsbot";
    b->max_message_bytes = 4000;
    b->shutdown_grace_ms = 30000;
    b->ask_ttl_ms = 600000;
    b->chat_output_cap = 3000;
    b->exec_opts.max_concurrency = 4;
    b->exec_opts.output_cap = 65536;
    b->exec_opts.kill_grace_ms = 5000;
    b->console_user = "dev";
    b->console_channel = "console";

    s = section(cfg, root, "bot", bot_keys, d);
    if (s) {
        ob_cfg_string(cfg, s, "name", false, "opsbot", &b->name, d);
        ob_cfg_string(cfg, s, "state", false, state, &state, d);
        ob_cfg_string(cfg, s, "echo", false, "steps", &echo, d);
        if (echo && strcmp(echo, "steps"))
            ob_diag_addf(d, "%s: bot.echo: unknown echo mode '%s' (known: steps)",
                         ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(s, "echo"), where,
                                         sizeof(where)),
                         echo);
        ob_cfg_int(cfg, s, "max_message_bytes", false, 4000, 16, 1 << 20, &b->max_message_bytes, d);
        ob_cfg_duration(cfg, s, "shutdown_grace", false, 30000, &b->shutdown_grace_ms, d);
        ob_cfg_duration(cfg, s, "ask_timeout", false, 600000, &b->ask_ttl_ms, d);
        ob_cfg_int(cfg, s, "chat_output_cap", false, 3000, 100, 1 << 20, &b->chat_output_cap, d);
    }
    b->state_path = !strcmp(state, ":memory:") ? ob_xstrdup(state) : ob_config_path(cfg, state);

    s = section(cfg, root, "log", log_keys, d);
    b->log_level = OB_LOG_INFO;
    if (s && !ob_cfg_string(cfg, s, "level", false, "info", &level, d) &&
        ob_log_level_parse(level, &b->log_level))
        ob_diag_addf(d, "%s: log.level: unknown level '%s' (known: debug, info, warn, error)",
                     ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(s, "level"), where,
                                     sizeof(where)),
                     level);

    s = section(cfg, root, "exec", exec_keys, d);
    if (s) {
        if (!ob_cfg_int(cfg, s, "max_concurrency", false, 4, 1, 256, &v, d))
            b->exec_opts.max_concurrency = (size_t)v;
        if (!ob_cfg_int(cfg, s, "output_cap", false, 65536, 1024, 16 << 20, &v, d))
            b->exec_opts.output_cap = (size_t)v;
        ob_cfg_duration(cfg, s, "kill_grace", false, 5000, &b->exec_opts.kill_grace_ms, d);
        ob_cfg_bool(cfg, s, "dry_run", false, &b->exec_opts.dry_run, d);
        if (!ob_cfg_strlist(cfg, s, "env_allow", false, &list, d) && list) {
            size_t n = 0;
            const cJSON *it;

            if (cJSON_IsString(list)) {
                b->env_allow[n++] = list->valuestring;
            } else {
                cJSON_ArrayForEach(it, list)
                {
                    if (n == OB_ENV_ALLOW_MAX) {
                        ob_diag_addf(d, "%s: exec.env_allow: at most %d names",
                                     ob_config_where(cfg, list, where, sizeof(where)),
                                     OB_ENV_ALLOW_MAX);
                        break;
                    }
                    b->env_allow[n++] = it->valuestring;
                }
            }
            b->env_allow[n] = NULL;
            b->exec_opts.env_allow = b->env_allow;
        }
    }

    s = cJSON_GetObjectItemCaseSensitive(root, "platforms");
    if (s && !cJSON_IsNull(s) && !cJSON_IsObject(s)) {
        ob_diag_addf(d, "%s: platforms: expected a mapping",
                     ob_config_where(cfg, s, where, sizeof(where)));
    } else if (s) {
        const cJSON *p;

        cJSON_ArrayForEach(p, s)
        {
            const struct ob_platform *pf = ob_platform_find(p->string);

            if (!strcmp(p->string, "console")) {
                const cJSON *c = section(cfg, s, "console", console_keys, d);

                if (c) {
                    ob_cfg_string(cfg, c, "user", false, "dev", &b->console_user, d);
                    ob_cfg_string(cfg, c, "channel", false, "console", &b->console_channel, d);
                }
            } else if (!pf) {
                char known[256] = "console";

                for (size_t i = 0; ob_platforms[i]; i++) {
                    strncat(known, ", ", sizeof(known) - strlen(known) - 1);
                    strncat(known, ob_platforms[i]->name, sizeof(known) - strlen(known) - 1);
                }
                ob_diag_addf(d, "%s: platforms.%s: unknown platform (known: %s)",
                             ob_config_where(cfg, p, where, sizeof(where)), p->string, known);
            } else if (!cJSON_IsObject(p)) {
                ob_diag_addf(d, "%s: platforms.%s: expected a mapping",
                             ob_config_where(cfg, p, where, sizeof(where)), p->string);
            } else {
                pf->check(cfg, p, d);
            }
        }
    }
    section(cfg, root, "policies", policies_keys, d);
    load_metrics(b, root, d);
    ob_llm_config_load(&b->llm, cfg, d);
}

int ob_bundle_load(struct ob_bundle **out, const char *path, struct ob_diag *d)
{
    struct ob_bundle *b = ob_xcalloc(1, sizeof(*b));
    const cJSON *extra = NULL, *r;
    size_t before = d->n;

    *out = NULL;
    b->refs = 1;
    if (ob_config_load(&b->cfg, path, d))
        goto fail;
    load_options(b, d);
    ob_catalog_load(&b->cat, b->cfg, d);
    if (b->cat) {
        for (size_t i = 0; i < b->cat->n; i++)
            ob_exec_check_binding(b->cfg, &b->cat->actions[i], d);
    }
    ob_targets_check(b->cfg, d);
    ob_policy_load(&b->pol, b->cfg, b->cat, d);
    r = section(b->cfg, ob_config_root(b->cfg), "redact", redact_keys, d);
    if (r)
        extra = cJSON_GetObjectItemCaseSensitive(r, "patterns");
    if (extra && !cJSON_IsArray(extra)) {
        char where[300];

        ob_diag_addf(d, "%s: redact.patterns: expected a list of patterns",
                     ob_config_where(b->cfg, extra, where, sizeof(where)));
        extra = NULL;
    }
    ob_redact_new(&b->red, b->cfg, extra, d);
    if (b->cat && b->llm)
        ob_diagnose_load(&b->diag, b->cfg, b->cat, b->llm, d);
    if (d->n > before || !b->cat || !b->pol || !b->red || !b->llm || !b->diag)
        goto fail;
    *out = b;
    return 0;
fail:
    ob_bundle_unref(b);
    return OB_ECONFIG;
}

struct ob_bundle *ob_bundle_ref(struct ob_bundle *b)
{
    b->refs++;
    return b;
}

void ob_bundle_unref(struct ob_bundle *b)
{
    if (!b || --b->refs > 0)
        return;
    ob_diagnose_free(b->diag);
    ob_llm_config_free(b->llm);
    ob_redact_free(b->red);
    ob_policy_free(b->pol);
    ob_catalog_free(b->cat);
    ob_config_free(b->cfg);
    free(b->state_path);
    free(b);
}

const struct ob_config *ob_bundle_config(const struct ob_bundle *b)
{
    return b->cfg;
}

const struct ob_policy *ob_bundle_policy(const struct ob_bundle *b)
{
    return b->pol;
}

const struct ob_catalog *ob_bundle_catalog(const struct ob_bundle *b)
{
    return b->cat;
}

char *ob_bundle_state_path(const struct ob_bundle *b)
{
    return ob_xstrdup(b->state_path);
}

void ob_bundle_summary(const struct ob_bundle *b, void *file)
{
    FILE *f = file;
    size_t groups = 0, rules = 0, freezes = 0, limits = 0, nincl = 0;
    const struct ob_config_doc *docs;

    ob_policy_stats(b->pol, &groups, &rules, &freezes, &limits);
    fprintf(f, "config ok: %s\n", ob_config_dir(b->cfg));
    fprintf(f, "  bot: %s, state %s, log %s\n", b->name, b->state_path,
            (const char *[]){"debug", "info", "warn", "error"}[b->log_level]);
    docs = ob_config_includes(b->cfg, "actions", &nincl);
    (void)docs;
    fprintf(f, "  actions: %zu from %zu file(s)\n", b->cat->n, nincl);
    for (size_t i = 0; i < b->cat->n; i++) {
        const struct ob_action *a = &b->cat->actions[i];
        const cJSON *type =
            a->executor ? cJSON_GetObjectItemCaseSensitive(a->executor, "type") : NULL;
        char params[256] = "";
        size_t off = 0;

        for (size_t j = 0; j < a->nparams && off < sizeof(params); j++)
            off += (size_t)snprintf(params + off, sizeof(params) - off, "%s%s%s", j ? " " : "",
                                    a->params[j].name, a->params[j].required ? "" : "?");
        fprintf(f, "    %-10s %-6s %zu rule(s)  executor %-5s  params: %s\n", a->name,
                a->risk == OB_RISK_READ ? "read" : "change", a->nrules,
                cJSON_IsString(type) ? type->valuestring : "built-in", params);
    }
    ob_config_includes(b->cfg, "policies", &nincl);
    fprintf(f,
            "  policy: %zu group(s), %zu rule(s), %zu freeze window(s), %zu rate limit(s) "
            "from %zu file(s)\n",
            groups, rules, freezes, limits, nincl);
    fprintf(f, "  redaction: %zu pattern(s)\n", ob_redact_count(b->red));
    fprintf(f, "  exec: max %zu concurrent, output cap %zu bytes\n", b->exec_opts.max_concurrency,
            b->exec_opts.output_cap);
    fprintf(f, "  platforms: console (user %s)\n", b->console_user);
    if (b->llm && b->llm->set.enabled) {
        const struct ob_llm_settings *ls = &b->llm->set;
        char t[32];

        fprintf(f, "  llm: %s via %s (%s %s, timeout %s, %d retries), prompt %s@%s\n",
                ob_llm_mode_name(ls->mode), ls->conn->name,
                ls->conn->api == OB_LLM_API_AZURE ? "azure" : "openai", ls->conn->model,
                ob_duration_format(ls->conn->timeout_ms, t, sizeof(t)), ls->conn->retries,
                strrchr(ls->prompt_path, '/') ? strrchr(ls->prompt_path, '/') + 1 : ls->prompt_path,
                ls->prompt_version);
    } else {
        fprintf(f, "  llm: off (rules only)\n");
    }
    if (b->llm && b->llm->nconns) {
        fprintf(f, "  connections:");
        for (size_t i = 0; i < b->llm->nconns; i++)
            fprintf(f, " %s", b->llm->conns[i].name);
        fputc('\n', f);
    }
    fprintf(f, "  metrics: %s\n", b->metrics_listen ? b->metrics_listen : "off");
    if (b->diag && ob_diagnose_settings(b->diag)->enabled) {
        const struct ob_dx_settings *ds = ob_diagnose_settings(b->diag);
        char t[32];

        fprintf(f,
                "  diagnose: %zu evidence queries, budget %s, up to %d proposals, %zu runbook "
                "section(s), llm narrative %s\n",
                ob_diagnose_evidence_count(b->diag),
                ob_duration_format(ds->budget_ms, t, sizeof(t)), ds->max_proposals,
                ob_runbooks_sections(ob_diagnose_runbooks(b->diag)), ds->narrative ? "on" : "off");
    }
}
