#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/redact.h"
#include "opsbot/util.h"

static enum ob_log_level min_level = OB_LOG_INFO;
static const struct ob_redact *redactor;
static int human;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ob_log_set_level(enum ob_log_level level)
{
    min_level = level;
}

int ob_log_level_parse(const char *s, enum ob_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, level_names[i])) {
            *out = (enum ob_log_level)i;
            return 0;
        }
    }
    return OB_EINVAL;
}

void ob_log_set_redactor(const struct ob_redact *r)
{
    redactor = r;
}

void ob_log_set_human(int on)
{
    human = on;
}

void ob_log(enum ob_log_level level, const char *comp, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL, *clean;
    char ts[40];

    if (level < min_level)
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        return;
    clean = ob_redact_apply(redactor, msg, strlen(msg));
    free(msg);
    if (!clean)
        return;
    if (human) {
        fprintf(stderr, "opsbot: %s%s%s: %s\n", level >= OB_LOG_WARN ? level_names[level] : "",
                level >= OB_LOG_WARN ? " " : "", comp, clean);
    } else {
        cJSON *o = cJSON_CreateObject();
        char *line;

        cJSON_AddStringToObject(o, "ts", ob_time_format(ob_now_ms(), ts, sizeof(ts)));
        cJSON_AddStringToObject(o, "level", level_names[level]);
        cJSON_AddStringToObject(o, "comp", comp);
        cJSON_AddStringToObject(o, "msg", clean);
        line = cJSON_PrintUnformatted(o);
        if (line)
            fprintf(stderr, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    fflush(stderr);
    free(clean);
}
