/* Teams activities (the Bot Framework's POSTed JSON) through
 * ob_teams_activity_parse, as the messaging endpoint does after the JWT
 * checks out. */
#include "fuzz_common.h"
#include "opsbot/teams.h"
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
    const struct ob_teams_self self = {"app-1"};
    struct ob_teams_activity *a = calloc(1, sizeof(*a));
    cJSON *act = cJSON_ParseWithLength((const char *)data, size);
    int rc;

    if (!a)
        abort();
    rc = ob_teams_activity_parse(&self, act, a);
    if (rc == 1 && a->text && strlen(a->text) != a->text_len)
        abort();
    if (rc == 0 && !a->ignored[0])
        abort(); /* ignored activities say why */
    if (a->nreactions > sizeof(a->reactions) / sizeof(a->reactions[0]))
        abort();
    ob_teams_activity_release(a);
    cJSON_Delete(act);
    free(a);
    return 0;
}
