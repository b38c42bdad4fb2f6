#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "opsbot/config.h"
#include "opsbot/err.h"

int ob_duration_parse(const char *s, int64_t *out_ms)
{
    int64_t total = 0;
    bool any = false;

    if (!s)
        return OB_EINVAL;
    while (*s == ' ')
        s++;
    if (!*s)
        return OB_EINVAL;
    /* Plain digits: seconds. */
    if (strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 12)
            return OB_EINVAL;
        int64_t v = 0;
        for (; *s; s++)
            v = v * 10 + (*s - '0');
        *out_ms = v * 1000;
        return 0;
    }
    while (*s) {
        int64_t v = 0, unit;
        int digits = 0;

        while (isdigit((unsigned char)*s)) {
            if (++digits > 12)
                return OB_EINVAL;
            v = v * 10 + (*s++ - '0');
        }
        if (!digits)
            return OB_EINVAL;
        if (!strncmp(s, "ms", 2)) {
            unit = 1;
            s += 2;
        } else if (*s == 's') {
            unit = 1000;
            s++;
        } else if (*s == 'm') {
            unit = 60000;
            s++;
        } else if (*s == 'h') {
            unit = 3600000;
            s++;
        } else if (*s == 'd') {
            unit = 86400000;
            s++;
        } else {
            return OB_EINVAL;
        }
        if (v > INT64_MAX / unit || total > INT64_MAX - v * unit)
            return OB_EINVAL;
        total += v * unit;
        any = true;
    }
    if (!any)
        return OB_EINVAL;
    *out_ms = total;
    return 0;
}

const char *ob_duration_format(int64_t ms, char *buf, size_t len)
{
    size_t off = 0;

    if (ms < 1000) {
        snprintf(buf, len, "%lldms", (long long)ms);
        return buf;
    }
    buf[0] = '\0';
    int64_t s = ms / 1000;
    int64_t d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
    if (d && off < len)
        off += (size_t)snprintf(buf + off, len - off, "%lldd", (long long)d);
    if (h && off < len)
        off += (size_t)snprintf(buf + off, len - off, "%lldh", (long long)h);
    if (m && off < len)
        off += (size_t)snprintf(buf + off, len - off, "%lldm", (long long)m);
    if ((sec || off == 0) && off < len)
        snprintf(buf + off, len - off, "%llds", (long long)sec);
    return buf;
}
