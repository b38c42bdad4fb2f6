/* Message bodies for Discord's REST API: content split into chunks under
 * the 2000-character limit, Approve / Deny buttons (an action row of two
 * buttons) on approval requests, no pings except the person asked, and
 * emoji for the reaction route. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord_int.h"
#include "opsbot/http.h"
#include "opsbot/util.h"

/* Button styles (message components). */
enum { BUTTON_SUCCESS = 3, BUTTON_DANGER = 4 };
enum { COMPONENT_ACTION_ROW = 1, COMPONENT_BUTTON = 2 };

#define ACK_TEXT_MAX 1800

static cJSON *button(const char *label, const char *custom_id, int style)
{
    cJSON *b = cJSON_CreateObject();

    cJSON_AddNumberToObject(b, "type", COMPONENT_BUTTON);
    cJSON_AddNumberToObject(b, "style", style);
    cJSON_AddStringToObject(b, "label", label);
    cJSON_AddStringToObject(b, "custom_id", custom_id);
    return b;
}

cJSON *discord__approval_components(void)
{
    cJSON *rows = cJSON_CreateArray(), *row = cJSON_CreateObject(), *list = cJSON_CreateArray();

    cJSON_AddItemToArray(list, button("Approve", "opsbot:approve", BUTTON_SUCCESS));
    cJSON_AddItemToArray(list, button("Deny", "opsbot:deny", BUTTON_DANGER));
    cJSON_AddNumberToObject(row, "type", COMPONENT_ACTION_ROW);
    cJSON_AddItemToObject(row, "components", list);
    cJSON_AddItemToArray(rows, row);
    return rows;
}

static void no_pings(cJSON *o, const char *ask_user)
{
    cJSON *am = cJSON_AddObjectToObject(o, "allowed_mentions");

    cJSON_AddItemToObject(am, "parse", cJSON_CreateArray());
    if (ask_user && *ask_user) {
        cJSON *users = cJSON_AddArrayToObject(am, "users");

        cJSON_AddItemToArray(users, cJSON_CreateString(ask_user));
    }
}

static bool open_approval(unsigned flags)
{
    return (flags & OB_POST_APPROVAL) && !(flags & OB_POST_RESOLVED);
}

cJSON *discord__message_body(const char *content, unsigned flags, const char *ask_user,
                             const char *reply_to)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "content", content);
    if (open_approval(flags))
        cJSON_AddItemToObject(o, "components", discord__approval_components());
    no_pings(o, ask_user);
    if (reply_to && *reply_to) {
        cJSON *ref = cJSON_AddObjectToObject(o, "message_reference");

        cJSON_AddStringToObject(ref, "message_id", reply_to);
        cJSON_AddFalseToObject(ref, "fail_if_not_exists");
    }
    return o;
}

cJSON *discord__edit_body(const char *content, unsigned flags)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "content", content);
    /* An empty list removes the buttons of a decided request. */
    cJSON_AddItemToObject(o, "components",
                          open_approval(flags) ? discord__approval_components()
                                               : cJSON_CreateArray());
    no_pings(o, NULL);
    return o;
}

/* The answer to /ops (CHANNEL_MESSAGE_WITH_SOURCE): who asked what, capped,
 * pinging nobody. Its message roots the request's thread. */
cJSON *discord__command_ack(const struct ob_discord_event *e)
{
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddObjectToObject(o, "data");
    size_t n = e->text_len > ACK_TEXT_MAX ? ACK_TEXT_MAX : e->text_len;
    char *text = NULL;

    while (n > 0 && n < e->text_len && ((unsigned char)e->text[n] & 0xc0) == 0x80)
        n--;
    if (asprintf(&text, "<@%s> asked: /ops %.*s", e->user, (int)n, e->text ? e->text : "") < 0)
        text = NULL;
    cJSON_AddNumberToObject(o, "type", 4);
    cJSON_AddStringToObject(data, "content", text ? text : "/ops");
    no_pings(data, NULL);
    free(text);
    return o;
}

/* ---- chunks ------------------------------------------------------------------------ */

size_t discord__chunk_len(const char *text, size_t off)
{
    size_t rest = strlen(text + off), n = DC_CHUNK_BYTES;

    if (rest <= DC_CHUNK_BYTES)
        return rest;
    for (size_t i = n; i > n - n / 4; i--)
        if (text[off + i - 1] == '\n')
            return i;
    while (n > 1 && ((unsigned char)text[off + n] & 0xc0) == 0x80)
        n--;
    return n;
}

static size_t fences(const char *text, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i + 3 <= len; i++) {
        if (!strncmp(text + i, "```", 3)) {
            n++;
            i += 2;
        }
    }
    return n;
}

/* The chunk text[off..off+n), with a code fence open across the cut closed
 * and reopened. */
char *discord__chunk(const char *text, size_t off, size_t n)
{
    bool open_before = fences(text, off) % 2 == 1;
    bool open_after = fences(text, off + n) % 2 == 1;
    char *t = NULL;

    if (asprintf(&t, "%s%.*s%s", open_before ? "```\n" : "", (int)n, text + off,
                 open_after ? "\n```" : "") < 0)
        return NULL;
    return t;
}

/* ---- emoji ---------------------------------------------------------------------------- */

/* Names the core or an operator may use for common emoji. */
static const struct {
    const char *name;
    const char *utf8;
} emoji_names[] = {
    {"white_check_mark", "\xe2\x9c\x85"},
    {"heavy_check_mark", "\xe2\x9c\x94\xef\xb8\x8f"},
    {"x", "\xe2\x9d\x8c"},
    {"+1", "\xf0\x9f\x91\x8d"},
    {"thumbsup", "\xf0\x9f\x91\x8d"},
    {"-1", "\xf0\x9f\x91\x8e"},
    {"thumbsdown", "\xf0\x9f\x91\x8e"},
    {"eyes", "\xf0\x9f\x91\x80"},
    {"hourglass", "\xe2\x8c\x9b"},
    {"warning", "\xe2\x9a\xa0\xef\xb8\x8f"},
    {"no_entry", "\xe2\x9b\x94"},
};

/* The {emoji} segment of the reaction route: a unicode emoji (or a known
 * name of one), or a custom "name:id", URL-encoded. NULL when unusable. */
char *discord__emoji_path(const char *emoji)
{
    char buf[128];
    size_t n;

    if (!emoji)
        return NULL;
    if (*emoji == ':')
        emoji++;
    ob_strlcpy(buf, emoji, sizeof(buf));
    n = strlen(buf);
    if (n && buf[n - 1] == ':')
        buf[--n] = '\0';
    if (!n || n >= sizeof(buf) - 1 || !ob_utf8_valid(buf, n))
        return NULL;
    for (size_t i = 0; i < sizeof(emoji_names) / sizeof(emoji_names[0]); i++)
        if (!strcmp(emoji_names[i].name, buf))
            return ob_http_escape(emoji_names[i].utf8);
    return ob_http_escape(buf);
}
