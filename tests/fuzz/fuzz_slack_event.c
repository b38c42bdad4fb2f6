/* Slack payloads without the envelope: the first byte picks the frame type
 * (events_api, interactive, slash_commands, other), the rest is the payload
 * JSON given to ob_slack_payload_event; the event's view is checked the way
 * the core uses it. */
#include "fuzz_common.h"
#include "opsbot/slack.h"
#include "opsbot/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum ob_slack_frame types[] = {OB_SLACK_EVENTS_API, OB_SLACK_INTERACTIVE,
                                                OB_SLACK_SLASH_COMMANDS, OB_SLACK_OTHER};
    static const char *const channels[] = {"C0OPS"};
    struct ob_slack_self self = {.user_id = "UBOT", .bot_id = "BBOT"};
    struct ob_slack_event ev;
    struct ob_event view;
    cJSON *payload;
    int rc;

    if (size < 1)
        return 0;
    self.listen_all = data[0] & 4;
    if (data[0] & 8) {
        self.channels = channels;
        self.nchannels = 1;
    }
    payload = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    rc = ob_slack_payload_event(&self, types[data[0] & 3], payload, &ev);
    if (rc == 1) {
        ob_slack_event_view(&ev, &view);
        /* The core copies text_len bytes and checks them as UTF-8. */
        if (view.text && strlen(view.text) != view.text_len)
            abort();
    } else if (rc == 0 && !ev.ignored[0]) {
        abort(); /* ignored events say why */
    }
    ob_slack_event_release(&ev);
    cJSON_Delete(payload);
    return 0;
}
