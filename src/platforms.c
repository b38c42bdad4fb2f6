/* The registry of chat platforms `opsbot run` can start. An adapter adds its
 * row here (and nowhere else in the core). */
#include <string.h>

#include "opsbot/discord.h"
#include "opsbot/platform.h"
#include "opsbot/slack.h"
#include "opsbot/teams.h"

const struct ob_platform *const ob_platforms[] = {
    &ob_slack_platform,
    &ob_teams_platform,
    &ob_discord_platform,
    NULL,
};

const struct ob_platform *ob_platform_find(const char *name)
{
    for (size_t i = 0; ob_platforms[i]; i++)
        if (!strcmp(ob_platforms[i]->name, name))
            return ob_platforms[i];
    return NULL;
}
