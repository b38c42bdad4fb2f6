/* Discord gateway frames: ob_discord_parse_payload on the raw frame, then
 * dispatches through ob_discord_dispatch_event as the adapter does (once
 * listening to mentions only in a channel allow-list with a known thread,
 * once listening to everything). The interaction token (a credential) must
 * stay out of everything but its own field. */
#include "fuzz_common.h"
#include "opsbot/discord.h"

#define BOT "100000000000000001"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static const char *thread_parent(void *data, const char *channel_id)
{
    (void)data;
    return !strcmp(channel_id, "210000000000000001") ? "200000000000000001" : NULL;
}

static void dispatch(const struct ob_discord_self *self, const struct ob_discord_payload *p)
{
    struct ob_discord_event ev;
    struct ob_event view;
    int rc = ob_discord_dispatch_event(self, p->t, p->d, &ev);

    if (rc == 1) {
        ob_discord_event_view(&ev, &view);
        if (view.text && strlen(view.text) != view.text_len)
            abort();
        /* (A short fuzzed token is a substring of anything: real ones are
         * long random strings.) */
        if (strlen(ev.interaction_token) >= 20 &&
            ((view.text && strstr(view.text, ev.interaction_token)) ||
             strstr(ev.id, ev.interaction_token)))
            abort();
    } else if (rc == 0 && !ev.ignored[0]) {
        abort(); /* ignored events say why */
    }
    ob_discord_event_release(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const channels[] = {"200000000000000001"};
    struct ob_discord_self mentions = {
        .user_id = BOT, .channels = channels, .nchannels = 1, .thread_parent = thread_parent};
    struct ob_discord_self all = {.user_id = BOT, .listen_all = true};
    struct ob_discord_payload p;
    char err[160];

    if (ob_discord_parse_payload((const char *)data, size, &p, err, sizeof(err)) == 0 &&
        p.op == OB_DISCORD_OP_DISPATCH && p.t[0] && p.d) {
        dispatch(&mentions, &p);
        dispatch(&all, &p);
    }
    if (strnlen(err, sizeof(err)) == sizeof(err))
        abort();
    ob_discord_payload_release(&p);
    return 0;
}
