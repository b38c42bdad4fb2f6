/* Block Kit for approval requests: the request as a section, then Approve /
 * Deny buttons (action_id and value "approve" / "deny"); once resolved, the
 * same section without the buttons. */
#include <string.h>

#include "slack_int.h"

/* A section's text may hold at most 3000 characters; the message's `text`
 * (the notification fallback) always carries everything. */
#define SECTION_MAX 2900

static cJSON *plain(const char *text)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "type", "plain_text");
    cJSON_AddStringToObject(o, "text", text);
    return o;
}

static cJSON *button(const char *id, const char *label, const char *style)
{
    cJSON *b = cJSON_CreateObject();

    cJSON_AddStringToObject(b, "type", "button");
    cJSON_AddStringToObject(b, "action_id", id);
    cJSON_AddItemToObject(b, "text", plain(label));
    cJSON_AddStringToObject(b, "style", style);
    cJSON_AddStringToObject(b, "value", id);
    return b;
}

static cJSON *section(const char *text)
{
    cJSON *s = cJSON_CreateObject(), *t = cJSON_CreateObject();
    size_t len = strlen(text);
    char buf[SECTION_MAX + 8];

    if (len > SECTION_MAX) {
        /* Cut at a UTF-8 boundary and say so. */
        size_t n = SECTION_MAX - 4;

        while (n && ((unsigned char)text[n] & 0xc0) == 0x80)
            n--;
        memcpy(buf, text, n);
        memcpy(buf + n, " …", sizeof(" …"));
        text = buf;
    }
    cJSON_AddStringToObject(s, "type", "section");
    cJSON_AddStringToObject(t, "type", "mrkdwn");
    cJSON_AddStringToObject(t, "text", *text ? text : " ");
    cJSON_AddItemToObject(s, "text", t);
    return s;
}

cJSON *slack__blocks(const char *escaped_text, unsigned flags)
{
    cJSON *blocks, *actions, *el;

    if (!(flags & OB_POST_APPROVAL))
        return NULL;
    blocks = cJSON_CreateArray();
    cJSON_AddItemToArray(blocks, section(escaped_text));
    if (flags & OB_POST_RESOLVED)
        return blocks;
    actions = cJSON_CreateObject();
    cJSON_AddStringToObject(actions, "type", "actions");
    cJSON_AddStringToObject(actions, "block_id", "opsbot_approval");
    el = cJSON_AddArrayToObject(actions, "elements");
    cJSON_AddItemToArray(el, button("approve", "Approve", "primary"));
    cJSON_AddItemToArray(el, button("deny", "Deny", "danger"));
    cJSON_AddItemToArray(blocks, actions);
    return blocks;
}
