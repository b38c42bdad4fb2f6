/* Policy files: the input is loaded as YAML (the real loader) and added
 * with ob_policy_add_json against the shipped catalog; a loaded policy then
 * decides a handful of requests (reads, prod changes, strangers, other
 * platforms) at a few instants, with the rate-limit counter answering from
 * the input too. Every decision must name a rule and be a known effect. */
#include "fuzz_common.h"
#include "opsbot/err.h"
#include "opsbot/policy.h"

static struct fuzz_shipped S;
static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    S = fuzz_load_shipped();
    snprintf(path, sizeof(path), "%s/policy.yaml", fuzz_sandbox());
    return 0;
}

static int count_cb(void *data, const char *user, const char *action, int64_t since_ms)
{
    (void)user;
    (void)action;
    (void)since_ms;
    return *(int *)data;
}

static void decide(const struct ob_policy *pol, const char *user, const char *platform,
                   const char *action, const char *env, int64_t now, int count)
{
    struct ob_policy_request rq = {0};
    struct ob_decision dec;
    struct ob_kv kv[2] = {{"service", "checkout"}, {"env", ""}};
    const struct ob_action *a = ob_catalog_find(S.cat, action);
    char buf[512];

    snprintf(kv[1].value, sizeof(kv[1].value), "%s", env);
    rq.user = user;
    rq.platform = platform;
    rq.channel = "C0OPS";
    rq.action = action;
    rq.params = kv;
    rq.nparams = 2;
    rq.is_read = a && a->risk == OB_RISK_READ;
    rq.now_ms = now;
    ob_policy_decide(pol, &rq, count_cb, &count, &dec);
    if (dec.effect != OB_EFFECT_DENY && dec.effect != OB_EFFECT_ALLOW &&
        dec.effect != OB_EFFECT_APPROVE)
        abort();
    if (!dec.rule[0] || strnlen(dec.reason, sizeof(dec.reason)) == sizeof(dec.reason))
        abort();
    if (dec.effect == OB_EFFECT_APPROVE && (dec.count < 1 || !dec.approvers[0]))
        abort();
    ob_policy_may_use(pol, user, platform, action);
    ob_policy_in_group(pol, dec.approvers, user);
    ob_policy_group_members(pol, dec.approvers, buf, sizeof(buf));
    ob_policy_first_group(pol, user);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t instants[] = {0, 1767225600000LL /* 2026-01-01 */,
                                       1785000000000LL /* a Saturday in 2026 */};
    char *yaml = fuzz_cstr(data, size);
    struct ob_config *cfg = NULL;
    struct ob_policy *pol = NULL;
    struct ob_diag d;
    int count = size ? data[size - 1] % 8 : 0;

    ob_diag_init(&d);
    if (ob_config_load_string(&cfg, yaml, path, &d) == 0 &&
        ob_policy_add_json(&pol, cfg, S.cat, ob_config_root(cfg), &d) == 0 && pol) {
        size_t g, r, f, l;

        ob_policy_stats(pol, &g, &r, &f, &l);
        for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
            decide(pol, "console:dev", "console", "restart", "prod", instants[i], count);
            decide(pol, "slack:UDEV", "slack", "restart", "staging", instants[i], count);
            decide(pol, "console:oncall", "console", "status", "prod", instants[i], count);
            decide(pol, "teams:nobody", "teams", "scale", "dev", instants[i], count);
            decide(pol, "console:dev", "console", "help", "", instants[i], count);
        }
    }
    ob_policy_free(pol);
    ob_config_free(cfg);
    ob_diag_release(&d);
    free(yaml);
    return 0;
}
