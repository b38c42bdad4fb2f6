/* The command line. Every command takes -c FILE, has --help, and exits
 * non-zero with one clear line on error. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"
#include "opsbot/adapters.h"
#include "opsbot/audit.h"
#include "opsbot/bot.h"
#include "opsbot/discord.h"
#include "opsbot/err.h"
#include "opsbot/eval.h"
#include "opsbot/store.h"
#include "opsbot/teams.h"
#include "opsbot/util.h"

#define DEFAULT_CONFIG "opsbot.yaml"

static const char usage_main[] =
    "usage: opsbot COMMAND [-c FILE] [options]\n"
    "\n"
    "commands:\n"
    "  run            run the daemon with every adapter the config enables\n"
    "  console        talk to the bot in this terminal (or through a pipe)\n"
    "  check-config   validate the configuration and print a summary\n"
    "  policy explain show the policy decision for a user and an action, and why\n"
    "  audit verify   check the audit trail's hash chain\n"
    "  audit export   write the audit trail as csv, html or jsonl\n"
    "  eval           measure the parser (rules or LLM, per variant) on labelled requests\n"
    "  teams package  write the Microsoft Teams app package (zip) to upload\n"
    "  discord invite-url         print the URL that adds the Discord bot to a server\n"
    "  discord register-commands  register the /ops slash command with Discord\n"
    "\n"
    "  -c FILE        configuration (default $OPSBOT_CONFIG, else ./opsbot.yaml)\n"
    "  --version      print the version\n"
    "  --help         this text; COMMAND --help for a command's options\n";

static const char usage_run[] = "usage: opsbot run -c FILE\n"
                                "Runs the daemon: JSON log lines on stderr; SIGHUP reloads the\n"
                                "configuration (a bad one is refused and the old one kept);\n"
                                "SIGTERM stops taking requests, lets running actions finish\n"
                                "within bot.shutdown_grace, and exits.\n";

static const char usage_console[] =
    "usage: opsbot console -c FILE [--user NAME]\n"
    "Reads lines from standard input (a terminal, a pipe or a file); each line\n"
    "is a message from console:NAME (default: platforms.console.user, else dev).\n"
    "Bot messages print as \"[m7] text\". Console commands:\n"
    "  /as NAME  /react ID|last EMOJI  /unreact ID EMOJI  /approve  /deny\n"
    "  /in ID TEXT  /wait [all]  /redeliver  /help  /quit\n"
    "At end of input it waits for running actions and exits 0.\n"
    "  --verbose   log at debug level on stderr\n";

static const char usage_check[] = "usage: opsbot check-config -c FILE\n"
                                  "Validates everything (keys, types, patterns, executors,\n"
                                  "policy) and prints a summary, or every error as\n"
                                  "file:line: key: message and exits 1.\n";

static const char usage_explain[] =
    "usage: opsbot policy explain -c FILE --user ID --action NAME [--channel ID]\n"
    "                             [--param k=v]... [--at TIME]\n"
    "Prints the decision (allow, deny, approve) for platform-qualified user ID\n"
    "(e.g. console:dev, slack:U024BE7LH), the rule that made it and its\n"
    "file:line. Parameters are validated like a real request. --at evaluates\n"
    "freeze windows at TIME (2026-11-27T18:00Z) instead of now. Rate limits\n"
    "are counted from the state store when it exists.\n";

static const char usage_verify[] =
    "usage: opsbot audit verify -c FILE\n"
    "Recomputes the audit trail's hash chain; exits 1 naming the\n"
    "first bad record if any row was edited, removed or reordered.\n";

static const char usage_export[] =
    "usage: opsbot audit export -c FILE --format csv|html|jsonl [--since T] [--until T]\n"
    "                           [-o FILE]\n"
    "T is a UTC time (2026-11-27, 2026-11-27T17:00Z) or relative (-2h, -7d).\n";

static const char *config_path(const char *given)
{
    const char *env;

    if (given)
        return given;
    env = getenv("OPSBOT_CONFIG");
    return env && *env ? env : DEFAULT_CONFIG;
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "opsbot: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

static struct ob_bundle *load_or_report(const char *path)
{
    struct ob_bundle *b = NULL;
    struct ob_diag d;

    ob_diag_init(&d);
    if (ob_bundle_load(&b, path, &d)) {
        ob_diag_print(&d, stderr);
        fprintf(stderr, "opsbot: %s: %zu error(s)\n", path, d.n ? d.n : 1);
    }
    ob_diag_release(&d);
    return b;
}

/* For commands whose only option is -c FILE: returns -1 to go on, or the
 * exit status (0 after --help, 2 on a usage error). */
static int config_only_opts(int argc, char **argv, const char *usage, const char **path)
{
    int c;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            *path = optarg;
        } else if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "opsbot: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    return -1;
}

/* ---- run / console ------------------------------------------------------- */

/* The kernel grows a process's descriptor table by doubling, and once the
 * process has threads (libuv's pool) each growth waits for an RCU grace
 * period: on the bench's VM socket() blocked the loop 4-13 ms when it
 * returned 256, 512 and 1024 (tests/bench/notes.md). The table is grown
 * here once, before any thread exists, to the 1024 descriptors an lws
 * context may use (LWS_FD_LIMIT); /proc/PID/status says FDSize: 1024. */
static void grow_fd_table(void)
{
    struct rlimit rl;
    int base, fd;

    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 1024)
        return;
    base = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (base < 0)
        return;
    fd = fcntl(base, F_DUPFD_CLOEXEC, 1023);
    if (fd >= 0)
        close(fd);
    close(base);
}

static int run_loop(struct ob_bundle *b, const char *path, struct ob_adapter *console)
{
    uv_loop_t loop;
    struct ob_bot *bot = NULL;
    int rc, status;

    grow_fd_table();
    uv_loop_init(&loop);
    rc = ob_bot_new(&bot, &loop, b, path);
    if (rc) {
        if (console)
            console->ops->free(console);
        uv_loop_close(&loop);
        fprintf(stderr, "opsbot: cannot start: %s\n", ob_strerror(rc));
        return 1;
    }
    if (console)
        ob_bot_add_adapter(bot, console);
    /* Without an adapter reading input, the signal handles hold the loop. */
    ob_bot_handle_signals(bot, console == NULL);
    rc = ob_bot_start(bot);
    if (rc) {
        ob_bot_shutdown(bot);
        uv_run(&loop, UV_RUN_DEFAULT);
        ob_bot_free(bot);
        uv_loop_close(&loop);
        return 1;
    }
    if (!console && ob_bot_adapter_count(bot) == 0)
        ob_info("pipeline",
                "ready (pid %d): no chat platform is configured; talk to the bot "
                "with `opsbot console`",
                (int)getpid());
    else if (!console)
        ob_info("pipeline", "ready (pid %d): %zu platform(s) starting", (int)getpid(),
                ob_bot_adapter_count(bot));
    uv_run(&loop, UV_RUN_DEFAULT);
    status = ob_bot_exit_status(bot);
    ob_bot_free(bot);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop))
        ob_warn("pipeline", "loop closed with handles still open");
    return status;
}

static int cmd_run(int argc, char **argv)
{
    const char *path = NULL;
    struct ob_bundle *b;
    int rc = config_only_opts(argc, argv, usage_run, &path);

    if (rc >= 0)
        return rc;
    path = config_path(path);
    b = load_or_report(path);
    if (!b)
        return 1;
    ob_log_set_level(b->log_level);
    return run_loop(b, path, NULL);
}

static int cmd_console(int argc, char **argv)
{
    const char *path = NULL, *user = NULL;
    struct ob_bundle *b;
    struct ob_adapter *ad = NULL;
    bool verbose = false;
    int c, rc;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};

    while ((c = getopt_long(argc, argv, "c:u:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            fputs(usage_console, stdout);
            return 0;
        default:
            fputs(usage_console, stderr);
            return 2;
        }
    }
    path = config_path(path);
    ob_log_set_human(1);
    b = load_or_report(path);
    if (!b)
        return 1;
    ob_log_set_level(verbose ? OB_LOG_DEBUG
                             : (b->log_level > OB_LOG_WARN ? b->log_level : OB_LOG_WARN));
    if (!user)
        user = b->console_user;
    if (ob_console_new(&ad, NULL, user, b->console_channel, STDIN_FILENO, stdout)) {
        ob_bundle_unref(b);
        return fail("invalid console user '%s' (letters, digits, . _ -)", user);
    }
    rc = run_loop(b, path, ad);
    return rc;
}

/* ---- check-config -------------------------------------------------------- */

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    struct ob_bundle *b;
    int rc = config_only_opts(argc, argv, usage_check, &path);

    if (rc >= 0)
        return rc;
    path = config_path(path);
    ob_log_set_human(1);
    b = load_or_report(path);
    if (!b)
        return 1;
    ob_bundle_summary(b, stdout);
    ob_bundle_unref(b);
    return 0;
}

/* ---- policy explain ------------------------------------------------------ */

static int count_cb(void *data, const char *user, const char *action, int64_t since_ms)
{
    return data ? ob_store_count(data, user, action, since_ms) : 0;
}

static int cmd_explain(int argc, char **argv)
{
    const char *path = NULL, *user = NULL, *action = NULL, *channel = NULL, *at = NULL;
    struct ob_kv params[OB_MAX_PARAMS];
    const char *raw[OB_MAX_PARAMS];
    size_t nparams = 0;
    struct ob_policy_request pr = {0};
    struct ob_decision dec;
    struct ob_bundle *b;
    const struct ob_action *a;
    struct ob_store *store = NULL;
    char platform[32];
    int c;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"user", required_argument, NULL, 'u'},
        {"action", required_argument, NULL, 'a'}, {"channel", required_argument, NULL, 'C'},
        {"param", required_argument, NULL, 'p'},  {"at", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {0}};

    while ((c = getopt_long(argc, argv, "c:u:a:C:p:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'a':
            action = optarg;
            break;
        case 'C':
            channel = optarg;
            break;
        case 't':
            at = optarg;
            break;
        case 'p':
            if (nparams == OB_MAX_PARAMS)
                return fail("too many --param (at most %s)", "16");
            raw[nparams++] = optarg;
            break;
        case 'h':
            fputs(usage_explain, stdout);
            return 0;
        default:
            fputs(usage_explain, stderr);
            return 2;
        }
    }
    if (!user || !action)
        return fputs(usage_explain, stderr), 2;
    if (!strchr(user, ':') || strchr(user, ':') == user)
        return fail("--user must be platform-qualified, e.g. console:%s or slack:U024BE7LH", user);
    snprintf(platform, sizeof(platform), "%.*s", (int)(strchr(user, ':') - user), user);
    path = config_path(path);
    ob_log_set_human(1);
    b = load_or_report(path);
    if (!b)
        return 1;
    a = ob_catalog_find(b->cat, action);
    if (!a) {
        fprintf(stderr, "opsbot: unknown action '%s' (the catalog has:", action);
        for (size_t i = 0; i < b->cat->n; i++)
            fprintf(stderr, " %s", b->cat->actions[i].name);
        fprintf(stderr, ")\n");
        ob_bundle_unref(b);
        return 1;
    }
    for (size_t i = 0; i < nparams; i++) {
        const char *eq = strchr(raw[i], '=');
        const struct ob_param_def *p;
        char name[64], why[256];

        if (!eq || eq == raw[i] || (size_t)(eq - raw[i]) >= sizeof(name)) {
            ob_bundle_unref(b);
            return fail("--param wants NAME=VALUE, got '%s'", raw[i]);
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - raw[i]), raw[i]);
        p = ob_action_param(a, name);
        if (!p) {
            fprintf(stderr, "opsbot: action %s has no parameter '%s'\n", action, name);
            ob_bundle_unref(b);
            return 1;
        }
        if (ob_param_validate(p, eq + 1, params[i].value, sizeof(params[i].value), why,
                              sizeof(why))) {
            fprintf(stderr, "opsbot: %s: %s\n", name, why);
            ob_bundle_unref(b);
            return 1;
        }
        ob_strlcpy(params[i].name, name, sizeof(params[i].name));
    }
    pr.user = user;
    pr.platform = platform;
    pr.channel = channel;
    pr.action = action;
    pr.params = params;
    pr.nparams = nparams;
    pr.is_read = a->risk == OB_RISK_READ;
    pr.now_ms = ob_now_ms();
    if (at && ob_time_parse(at, &pr.now_ms)) {
        ob_bundle_unref(b);
        return fail("--at: cannot read time '%s' (e.g. 2026-11-27T18:00Z)", at);
    }
    if (access(b->state_path, F_OK) == 0 && ob_store_open(&store, b->state_path))
        store = NULL;
    ob_policy_decide(b->pol, &pr, count_cb, store, &dec);
    printf("decision: %s\n", ob_effect_name(dec.effect));
    printf("rule:     %s%s%s%s\n", dec.rule, dec.where[0] ? " (" : "", dec.where,
           dec.where[0] ? ")" : "");
    printf("why:      %s\n", dec.reason);
    if (dec.effect == OB_EFFECT_APPROVE) {
        char members[512], ttl[32];

        ob_policy_group_members(b->pol, dec.approvers, members, sizeof(members));
        printf("approval: %d of group %s (%s); self-approval %s; expires after %s\n", dec.count,
               dec.approvers, members, dec.allow_self ? "allowed" : "refused",
               ob_duration_format(dec.ttl_ms, ttl, sizeof(ttl)));
    }
    ob_store_close(store);
    ob_bundle_unref(b);
    return 0;
}

/* ---- audit --------------------------------------------------------------- */

static int open_store_for(const char *path, struct ob_bundle **bo, struct ob_store **so)
{
    struct ob_bundle *b = load_or_report(path);

    if (!b)
        return 1;
    if (access(b->state_path, F_OK)) {
        fprintf(stderr, "opsbot: no state store at %s (nothing has run yet)\n", b->state_path);
        ob_bundle_unref(b);
        return 1;
    }
    if (ob_store_open(so, b->state_path)) {
        fprintf(stderr, "opsbot: cannot open state store %s\n", b->state_path);
        ob_bundle_unref(b);
        return 1;
    }
    *bo = b;
    return 0;
}

static int cmd_audit_verify(int argc, char **argv)
{
    const char *path = NULL;
    struct ob_bundle *b;
    struct ob_store *s;
    int64_t count = 0, bad = 0;
    char why[512] = "";
    int rc = config_only_opts(argc, argv, usage_verify, &path);

    if (rc >= 0)
        return rc;
    ob_log_set_human(1);
    if (open_store_for(config_path(path), &b, &s))
        return 1;
    rc = ob_audit_verify(s, &count, &bad, why, sizeof(why));
    if (rc == 0)
        printf("audit chain intact: %lld record(s)\n", (long long)count);
    else if (rc == OB_ETAMPER)
        fprintf(stderr, "opsbot: audit chain BROKEN at record %lld: %s\n", (long long)bad, why);
    else
        fprintf(stderr, "opsbot: cannot verify: %s\n", ob_strerror(rc));
    ob_store_close(s);
    ob_bundle_unref(b);
    return rc ? 1 : 0;
}

static int cmd_audit_export(int argc, char **argv)
{
    const char *path = NULL, *format = NULL, *since = NULL, *until = NULL, *outp = NULL;
    enum ob_audit_format fmt;
    int64_t since_ms = 0, until_ms = 0;
    struct ob_bundle *b;
    struct ob_store *s;
    FILE *f = stdout;
    int c, rc;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"since", required_argument, NULL, 's'},
                                         {"until", required_argument, NULL, 'u'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};

    while ((c = getopt_long(argc, argv, "c:f:s:u:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 's':
            since = optarg;
            break;
        case 'u':
            until = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'h':
            fputs(usage_export, stdout);
            return 0;
        default:
            fputs(usage_export, stderr);
            return 2;
        }
    }
    if (!format || ob_audit_format_parse(format, &fmt))
        return fail("--format must be csv, html or jsonl%s", "");
    if (since && ob_time_parse(since, &since_ms))
        return fail("--since: cannot read time '%s'", since);
    if (until && ob_time_parse(until, &until_ms))
        return fail("--until: cannot read time '%s'", until);
    ob_log_set_human(1);
    if (open_store_for(config_path(path), &b, &s))
        return 1;
    if (outp) {
        f = fopen(outp, "w");
        if (!f) {
            ob_store_close(s);
            ob_bundle_unref(b);
            return fail("cannot write %s", outp);
        }
    }
    rc = ob_audit_export(s, f, fmt, since_ms, until_ms);
    if (outp && fclose(f) && !rc)
        rc = OB_ESTORE;
    if (rc)
        fprintf(stderr, "opsbot: export failed: %s\n", ob_strerror(rc));
    ob_store_close(s);
    ob_bundle_unref(b);
    return rc ? 1 : 0;
}

/* ---- teams package ------------------------------------------------------ */

static const char usage_teams_package[] =
    "usage: opsbot teams package -c FILE -o PATH [--assets DIR]\n"
    "Writes the Teams app package (a zip with manifest.json, color.png and\n"
    "outline.png) for platforms.teams.app_id to PATH; upload it in Teams\n"
    "(Apps > Manage your apps > Upload an app) or the Teams admin center.\n"
    "DIR holds the manifest template ({{APP_ID}}, {{VERSION}}) and the icons:\n"
    "default $OPSBOT_TEAMS_ASSETS, else deploy/teams next to the config, else\n"
    "./deploy/teams, else /usr/share/opsbot/teams.\n";

static int cmd_teams_package(int argc, char **argv)
{
    const char *path = NULL, *outp = NULL, *assets = NULL, *app_id = NULL;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"assets", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    struct ob_config *cfg = NULL;
    const cJSON *sec;
    struct ob_diag d;
    char err[600], dir[1024];
    int c, rc;

    while ((c = getopt_long(argc, argv, "c:o:a:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == 'o') {
            outp = optarg;
        } else if (c == 'a') {
            assets = optarg;
        } else if (c == 'h') {
            fputs(usage_teams_package, stdout);
            return 0;
        } else {
            fputs(usage_teams_package, stderr);
            return 2;
        }
    }
    if (optind < argc || !outp) {
        fputs(usage_teams_package, stderr);
        return 2;
    }
    path = config_path(path);
    ob_diag_init(&d);
    rc = ob_config_load(&cfg, path, &d);
    if (rc) {
        ob_diag_print(&d, stderr);
        ob_diag_release(&d);
        return fail("%s: cannot load the configuration", path);
    }
    sec = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ob_config_root(cfg), "platforms"), "teams");
    if (!cJSON_IsObject(sec) || ob_cfg_string(cfg, sec, "app_id", true, NULL, &app_id, &d) ||
        !app_id || !*app_id || strspn(app_id, "0123456789abcdefABCDEF-") != strlen(app_id) ||
        strlen(app_id) > 64) {
        ob_diag_print(&d, stderr);
        ob_diag_release(&d);
        ob_config_free(cfg);
        return fail("%s: platforms.teams.app_id must be the bot's Microsoft App ID (a GUID)", path);
    }
    ob_diag_release(&d);
    if (!assets)
        assets = getenv("OPSBOT_TEAMS_ASSETS");
    if (!assets || !*assets) {
        const char *const cands[] = {"deploy/teams", "./deploy/teams", "/usr/share/opsbot/teams"};

        assets = cands[2];
        for (size_t i = 0; i < 3; i++) {
            char probe[1100];

            if (i == 0)
                snprintf(dir, sizeof(dir), "%s/deploy/teams", ob_config_dir(cfg));
            else
                snprintf(dir, sizeof(dir), "%s", cands[i]);
            snprintf(probe, sizeof(probe), "%s/manifest.json", dir);
            if (!access(probe, R_OK)) {
                assets = dir;
                break;
            }
        }
    }
    rc = ob_teams_package(app_id, OB_VERSION, assets, outp, err, sizeof(err));
    if (rc)
        fprintf(stderr, "opsbot: %s\n", err[0] ? err : ob_strerror(rc));
    else
        printf("wrote %s (app id %s): upload it in Teams (Apps > Manage your apps > Upload an "
               "app)\n",
               outp, app_id);
    ob_config_free(cfg);
    return rc ? 1 : 0;
}

/* ---- discord invite-url / register-commands ------------------------------ */

static const char usage_discord[] =
    "usage: opsbot discord invite-url -c FILE\n"
    "       opsbot discord register-commands -c FILE\n"
    "invite-url prints the OAuth2 URL that adds the bot to a server: scopes bot\n"
    "and applications.commands, and only the permissions opsbot needs (View\n"
    "Channels, Send Messages, Send Messages in Threads, Create Public Threads,\n"
    "Read Message History, Add Reactions). It needs platforms.discord.application_id.\n"
    "register-commands registers the /ops slash command for that application\n"
    "(PUT /applications/{id}/commands with the bot token). See docs/DISCORD.md.\n";

static int cmd_discord(int argc, char **argv)
{
    const char *path = NULL, *sub = argv[0], *app = NULL;
    struct ob_config *cfg = NULL;
    const cJSON *sec;
    struct ob_diag d;
    char out[512];
    int rc = config_only_opts(argc, argv, usage_discord, &path);

    if (rc >= 0)
        return rc;
    path = config_path(path);
    ob_diag_init(&d);
    rc = ob_config_load(&cfg, path, &d);
    if (rc) {
        ob_diag_print(&d, stderr);
        ob_diag_release(&d);
        return fail("%s: cannot load the configuration", path);
    }
    sec = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ob_config_root(cfg), "platforms"), "discord");
    if (!cJSON_IsObject(sec)) {
        ob_diag_release(&d);
        ob_config_free(cfg);
        return fail("%s: no platforms.discord section", path);
    }
    if (!strcmp(sub, "invite-url")) {
        if (ob_cfg_string(cfg, sec, "application_id", true, NULL, &app, &d) || !app ||
            ob_discord_invite_url(app, out, sizeof(out))) {
            ob_diag_print(&d, stderr);
            ob_diag_release(&d);
            ob_config_free(cfg);
            return fail("%s: platforms.discord.application_id must be the application's id "
                        "(quoted digits, General Information in the developer portal)",
                        path);
        }
        printf("%s\n", out);
        rc = 0;
    } else {
        uv_loop_t loop;

        uv_loop_init(&loop);
        rc = ob_discord_register_commands(&loop, cfg, sec, out, sizeof(out));
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        if (rc)
            fprintf(stderr, "opsbot: %s\n", out);
        else
            printf("%s\n", out);
    }
    ob_diag_release(&d);
    ob_config_free(cfg);
    return rc ? 1 : 0;
}

int ob_cli_main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("opsbot %s\n", OB_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "console"))
        return cmd_console(argc - 1, argv + 1);
    if (!strcmp(cmd, "check-config"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return ob_eval_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "teams")) {
        if (argc > 2 && !strcmp(argv[2], "package"))
            return cmd_teams_package(argc - 2, argv + 2);
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            fputs(usage_teams_package, stdout);
            return 0;
        }
        fprintf(stderr, "opsbot: unknown teams subcommand '%s' (package)\n",
                argc > 2 ? argv[2] : "");
        return 2;
    }
    if (!strcmp(cmd, "discord")) {
        const char *sub = argc > 2 ? argv[2] : "";

        if (!strcmp(sub, "invite-url") || !strcmp(sub, "register-commands"))
            return cmd_discord(argc - 2, argv + 2);
        if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
            fputs(usage_discord, stdout);
            return 0;
        }
        fprintf(stderr, "opsbot: unknown discord subcommand '%s' (invite-url, register-commands)\n",
                sub);
        return 2;
    }
    if (!strcmp(cmd, "policy") || !strcmp(cmd, "audit")) {
        const char *sub = argc > 2 ? argv[2] : "";

        if (!strcmp(cmd, "policy") && !strcmp(sub, "explain"))
            return cmd_explain(argc - 2, argv + 2);
        if (!strcmp(cmd, "audit") && !strcmp(sub, "verify"))
            return cmd_audit_verify(argc - 2, argv + 2);
        if (!strcmp(cmd, "audit") && !strcmp(sub, "export"))
            return cmd_audit_export(argc - 2, argv + 2);
        fprintf(stderr, "opsbot: unknown %s subcommand '%s' (%s)\n", cmd, sub,
                !strcmp(cmd, "policy") ? "explain" : "verify, export");
        return 2;
    }
    fprintf(stderr, "opsbot: unknown command '%s' (try opsbot --help)\n", cmd);
    return 2;
}
