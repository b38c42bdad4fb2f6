/* Configuration YAML: ob_config_load_string on the input as the main file
 * of a private directory (includes and .env resolve there), then the typed
 * accessors over every top-level member, as the bundle loader uses them. */
#include "fuzz_common.h"

static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    snprintf(path, sizeof(path), "%s/opsbot.yaml", fuzz_sandbox());
    return 0;
}

static void walk(const struct ob_config *cfg, const cJSON *obj, struct ob_diag *d)
{
    static const char *const allowed[] = {"bot",       "log",     "exec",     "redact",
                                          "platforms", "actions", "policies", NULL};
    const cJSON *it;
    char where[1024];

    ob_cfg_check_keys(cfg, obj, allowed, "fuzz", d);
    cJSON_ArrayForEach(it, obj)
    {
        const char *s;
        int64_t v;
        bool b;
        const cJSON *l;

        ob_config_where(cfg, it, where, sizeof(where));
        if (!it->string)
            abort();
        ob_cfg_string(cfg, obj, it->string, false, NULL, &s, d);
        ob_cfg_int(cfg, obj, it->string, false, 0, -1000, 1000, &v, d);
        ob_cfg_bool(cfg, obj, it->string, false, &b, d);
        ob_cfg_duration(cfg, obj, it->string, false, 0, &v, d);
        ob_cfg_strlist(cfg, obj, it->string, false, &l, d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *yaml = fuzz_cstr(data, size);
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    int rc;

    ob_diag_init(&d);
    rc = ob_config_load_string(&cfg, yaml, path, &d);
    if (rc == 0) {
        const cJSON *root = ob_config_root(cfg);
        size_t n;

        if (!cJSON_IsObject(root))
            abort(); /* the contract: a mapping after a successful load */
        walk(cfg, root, &d);
        ob_config_includes(cfg, "actions", &n);
        ob_config_includes(cfg, "policies", &n);
    } else if (d.n == 0) {
        abort(); /* a failed load says why */
    }
    ob_config_free(cfg);
    ob_diag_release(&d);
    free(yaml);
    return 0;
}
