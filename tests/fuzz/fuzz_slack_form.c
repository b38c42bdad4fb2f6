/* Slack HTTP Events mode form bodies (interactivity and slash commands,
 * application/x-www-form-urlencoded): the input is the request body. It goes
 * through slack__form_payload as the handler does, and what comes out is
 * given to ob_slack_payload_event as slack__dispatch does. Oracles: the
 * three parsers agree with each other, fields are non-empty keyed strings
 * without repeats, and a decoded value is exactly as long as its escapes
 * say (no byte lost or cut at a NUL) and survives re-encoding. */
#include <ctype.h>

#include "../../adapters/slack/slack_int.h"
#include "fuzz_common.h"
#include "opsbot/err.h"
#include "opsbot/slack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

/* s percent-encoded (spaces as '+'), malloc'd. */
static char *form_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * strlen(s) + 1), *o = out;

    if (!out)
        abort();
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else if (c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The whole input as one value: if it decodes, every escape took three
 * bytes to one, nothing else was dropped, and re-encoding gives it back. */
static void check_decode(const uint8_t *data, size_t size)
{
    char *dec = slack__form_decode((const char *)data, size), *enc, *again;
    size_t escapes = 0;

    if (!dec)
        return;
    for (size_t i = 0; i < size; i++)
        escapes += data[i] == '%';
    if (strlen(dec) != size - 2 * escapes)
        abort();
    enc = form_encode(dec);
    again = slack__form_decode(enc, strlen(enc));
    if (!again || strcmp(again, dec))
        abort();
    free(again);
    free(enc);
    free(dec);
}

/* Fields: an object of at most 64 strings with distinct non-empty keys. */
static void check_fields(const cJSON *fields)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsObject(fields))
        abort();
    cJSON_ArrayForEach(it, fields)
    {
        if (++n > 64 || !cJSON_IsString(it) || !it->string || !*it->string)
            abort();
        if (cJSON_GetObjectItemCaseSensitive(fields, it->string) != it)
            abort();
    }
}

/* The payload through the event parser, the way slack__dispatch does. */
static void dispatch(enum ob_slack_frame type, const cJSON *root, uint8_t flags)
{
    static const char *const channels[] = {"C0OPS"};
    struct ob_slack_self self = {.user_id = "UBOT", .bot_id = "BBOT"};
    struct ob_slack_event ev;
    struct ob_event view;
    int rc;

    self.listen_all = flags & 1;
    if (flags & 2) {
        self.channels = channels;
        self.nchannels = 1;
    }
    rc = ob_slack_payload_event(&self, type, root, &ev);
    if (rc == 1) {
        ob_slack_event_view(&ev, &view);
        if (view.text && strlen(view.text) != view.text_len)
            abort();
    } else if (rc == 0 && !ev.ignored[0]) {
        abort();
    }
    ob_slack_event_release(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cJSON unset; /* *root must be set whatever happens */
    const char *body = (const char *)data;
    enum ob_slack_frame type = OB_SLACK_OTHER;
    cJSON *root = &unset, *fields;
    int rc;

    check_decode(data, size);
    fields = slack__form_fields(body, size);
    rc = slack__form_payload(body, size, &type, &root);
    if (rc == OB_EPARSE) {
        if (fields || root)
            abort();
    } else if (rc == OB_EINVAL) {
        if (!fields || root)
            abort();
        check_fields(fields);
    } else if (rc == 0) {
        if (!fields || !cJSON_IsObject(root))
            abort();
        check_fields(fields);
        if (type == OB_SLACK_SLASH_COMMANDS) {
            /* The fields themselves, "command" among them. */
            if (!cJSON_Compare(root, fields, 1) ||
                !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "command")))
                abort();
        } else if (type != OB_SLACK_INTERACTIVE ||
                   !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fields, "payload"))) {
            abort();
        }
        dispatch(type, root, size ? data[0] : 0);
    } else {
        abort();
    }
    cJSON_Delete(root);
    cJSON_Delete(fields);
    return 0;
}
