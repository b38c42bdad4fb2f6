/* Adaptive Cards (1.5) for approval requests, and the text of plain
 * messages (Teams "xml" text format: &, <, > escaped, line breaks as
 * <br>). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/teams.h"
#include "opsbot/util.h"
#include "teams_int.h"

#define CARD_LINES 40
#define LINE_MAX_BYTES 2000

static cJSON *text_block(const char *text, size_t len, bool first, const char *color)
{
    cJSON *b = cJSON_CreateObject();
    char *t;

    if (len > LINE_MAX_BYTES) {
        len = LINE_MAX_BYTES;
        while (len && ((unsigned char)text[len] & 0xc0) == 0x80)
            len--;
    }
    t = strndup(text, len);
    cJSON_AddStringToObject(b, "type", "TextBlock");
    cJSON_AddStringToObject(b, "text", t && *t ? t : " ");
    cJSON_AddTrueToObject(b, "wrap");
    if (first) {
        cJSON_AddStringToObject(b, "weight", "Bolder");
        if (color)
            cJSON_AddStringToObject(b, "color", color);
    } else {
        cJSON_AddStringToObject(b, "spacing", "Small");
    }
    free(t);
    return b;
}

static cJSON *action_data(const char *verb, const char *ref)
{
    cJSON *d = cJSON_CreateObject();

    cJSON_AddStringToObject(d, "opsbot", strncmp(verb, "pick:", 5) ? "approval" : "pick");
    cJSON_AddStringToObject(d, "verb", verb);
    if (ref && *ref)
        cJSON_AddStringToObject(d, "ref", ref);
    return d;
}

static cJSON *button(const char *verb, const char *title, const char *style, const char *ref)
{
    cJSON *a = cJSON_CreateObject(), *fb = cJSON_CreateObject();

    cJSON_AddStringToObject(a, "type", "Action.Execute");
    cJSON_AddStringToObject(a, "title", title);
    cJSON_AddStringToObject(a, "verb", verb);
    cJSON_AddStringToObject(a, "style", style);
    cJSON_AddItemToObject(a, "data", action_data(verb, ref));
    /* Clients without Universal Actions send a message with `value`. */
    cJSON_AddStringToObject(fb, "type", "Action.Submit");
    cJSON_AddStringToObject(fb, "title", title);
    cJSON_AddStringToObject(fb, "style", style);
    cJSON_AddItemToObject(fb, "data", action_data(verb, ref));
    cJSON_AddItemToObject(a, "fallback", fb);
    return a;
}

static const char *outcome_color(const char *text)
{
    if (!strncmp(text, "APPROVED", 8))
        return "Good";
    if (!strncmp(text, "REFUSED", 7) || !strncmp(text, "WITHDRAWN", 9) ||
        !strncmp(text, "EXPIRED", 7))
        return "Attention";
    return NULL;
}

cJSON *ob_teams_card(const char *text, unsigned flags, const char *ref)
{
    cJSON *card = cJSON_CreateObject(), *body, *actions;
    bool resolved = (flags & OB_POST_RESOLVED) != 0;
    const char *p = text ? text : "";
    size_t lines = 0;

    cJSON_AddStringToObject(card, "type", "AdaptiveCard");
    cJSON_AddStringToObject(card, "$schema", "http://adaptivecards.io/schemas/adaptive-card.json");
    cJSON_AddStringToObject(card, "version", "1.5");
    body = cJSON_AddArrayToObject(card, "body");
    while (*p && lines < CARD_LINES) {
        size_t n = strcspn(p, "\n");

        /* The reaction hint is written for Slack; Teams has buttons and 👍. */
        if (!resolved && !strncmp(p, "react \xe2\x9c\x85", 9)) {
            const char *rest = strstr(p, " \xc2\xb7 ");
            char line[600];

            snprintf(line, sizeof(line),
                     "Approve or Deny below (a \xf0\x9f\x91\x8d on this "
                     "card approves too)%.*s",
                     rest && rest < p + n ? (int)(p + n - rest) : 0, rest ? rest : "");
            cJSON_AddItemToArray(body, text_block(line, strlen(line), false, NULL));
        } else if (n) {
            cJSON_AddItemToArray(
                body,
                text_block(p, n, lines == 0, resolved && lines == 0 ? outcome_color(p) : NULL));
        }
        lines++;
        p += n;
        if (*p == '\n')
            p++;
    }
    if (!lines)
        cJSON_AddItemToArray(body, text_block(" ", 1, true, NULL));
    if (resolved)
        return card;
    if (flags & OB_POST_APPROVAL) {
        actions = cJSON_AddArrayToObject(card, "actions");
        cJSON_AddItemToArray(actions, button("approve", "Approve", "positive", ref));
        cJSON_AddItemToArray(actions, button("deny", "Deny", "destructive", ref));
    } else if ((flags & OB_POST_CHOICES) && OB_POST_NCHOICES(flags)) {
        /* Numbered choices (diagnosis picks): buttons "1".."N" send
         * "pick:N". */
        actions = cJSON_AddArrayToObject(card, "actions");
        for (unsigned i = 1; i <= OB_POST_NCHOICES(flags); i++) {
            char verb[16], title[8];

            snprintf(verb, sizeof(verb), "pick:%u", i);
            snprintf(title, sizeof(title), "%u", i);
            cJSON_AddItemToArray(actions, button(verb, title, "default", ref));
        }
    }
    return card;
}

char *teams__xml_text(const char *text, size_t len)
{
    size_t n = 0, o = 0;
    char *out;

    for (size_t i = 0; i < len; i++)
        n += text[i] == '&' ? 5 : (text[i] == '<' || text[i] == '>') ? 4 : text[i] == '\n' ? 4 : 1;
    out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        const char *rep = text[i] == '&'    ? "&amp;"
                          : text[i] == '<'  ? "&lt;"
                          : text[i] == '>'  ? "&gt;"
                          : text[i] == '\n' ? "<br>"
                                            : NULL;

        if (rep) {
            memcpy(out + o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            out[o++] = text[i];
        }
    }
    out[o] = '\0';
    return out;
}
