/* Private to the core: the reloadable configuration bundle. */
#ifndef OPSBOT_BUNDLE_PRIV_H
#define OPSBOT_BUNDLE_PRIV_H

#include "opsbot/bot.h"
#include "opsbot/executor.h"
#include "opsbot/intent.h"
#include "opsbot/llm.h"
#include "opsbot/log.h"
#include "opsbot/policy.h"
#include "opsbot/redact.h"

#define OB_ENV_ALLOW_MAX 32

struct ob_bundle {
    int refs;
    struct ob_config *cfg;
    struct ob_catalog *cat;
    struct ob_policy *pol;
    struct ob_redact *red;
    /* bot: */
    const char *name;
    char *state_path;
    int64_t max_message_bytes;
    int64_t shutdown_grace_ms;
    int64_t ask_ttl_ms;
    int64_t chat_output_cap;
    enum ob_log_level log_level;
    /* exec: */
    struct ob_exec_opts exec_opts;
    const char *env_allow[OB_ENV_ALLOW_MAX + 1];
    /* platforms.console: */
    const char *console_user;
    const char *console_channel;
    /* connections: + llm: (always set after a successful load) */
    struct ob_llm_config *llm;
    /* metrics.listen, or NULL: no endpoint */
    const char *metrics_listen;
    /* diagnose: + the playbook (set after a successful load) */
    struct ob_diagnose *diag;
};

struct ob_bundle *ob_bundle_ref(struct ob_bundle *b);

#endif
