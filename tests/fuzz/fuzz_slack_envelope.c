/* Slack Socket Mode frames: ob_slack_parse_envelope on the raw frame, then
 * the payload through ob_slack_payload_event as the adapter does (once as a
 * mention-only bot in a channel allow-list, once listening to everything). */
#include "fuzz_common.h"
#include "opsbot/slack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static void to_event(const struct ob_slack_self *self, const struct ob_slack_envelope *env)
{
    struct ob_slack_event ev;
    struct ob_event view;
    int rc = ob_slack_payload_event(self, env->type, env->payload, &ev);

    if (rc == 1) {
        ob_slack_event_view(&ev, &view);
        /* The core relies on these: */
        if (!view.platform || (view.text && strlen(view.text) != view.text_len))
            abort();
    }
    ob_slack_event_release(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const channels[] = {"C0OPS", "D0DEV"};
    struct ob_slack_self mentions = {
        .user_id = "UBOT", .bot_id = "BBOT", .channels = channels, .nchannels = 2};
    struct ob_slack_self all = {.user_id = "UBOT", .bot_id = "BBOT", .listen_all = true};
    struct ob_slack_envelope env;
    char err[160];
    int rc;

    rc = ob_slack_parse_envelope((const char *)data, size, &env, err, sizeof(err));
    if (rc == 0 && env.payload) {
        to_event(&mentions, &env);
        to_event(&all, &env);
    }
    if (strnlen(err, sizeof(err)) == sizeof(err))
        abort();
    ob_slack_envelope_release(&env);
    return 0;
}
