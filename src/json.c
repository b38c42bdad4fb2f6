#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "opsbot/err.h"
#include "opsbot/json.h"
#include "opsbot/util.h"

int ob_json_parse_object(const char *json, size_t len, size_t max, const char *what, cJSON **out,
                         char *err, size_t errlen)
{
    const char *end = NULL;

    *out = NULL;
    if (!json || len == 0) {
        snprintf(err, errlen, "empty %s", what);
        return OB_EPARSE;
    }
    if (len > max) {
        snprintf(err, errlen, "%s of %zu bytes is over the %zu-byte limit", what, len, max);
        return OB_E2BIG;
    }
    *out = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!*out) {
        snprintf(err, errlen, "malformed JSON at byte %zu of %zu",
                 end && end >= json ? (size_t)(end - json) : (size_t)0, len);
        return OB_EJSON;
    }
    if (!cJSON_IsObject(*out)) {
        snprintf(err, errlen, "%s is not a JSON object", what);
        return OB_EPARSE;
    }
    return 0;
}

const cJSON *ob_json_member(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

const char *ob_json_str(const cJSON *o, const char *key)
{
    const cJSON *it = ob_json_member(o, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

bool ob_id_ok(const char *s, size_t len)
{
    size_t n = 0;

    if (!s || !*s)
        return false;
    for (; s[n]; n++)
        if (n + 1 >= len || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f ||
            s[n] == '"' || s[n] == '\\')
            return false;
    return true;
}

bool ob_id_copy(char *dst, size_t len, const char *s)
{
    if (!ob_id_ok(s, len))
        return false;
    ob_strlcpy(dst, s, len);
    return true;
}

/* 2^53: beyond it a double no longer holds every whole number. */
#define EXACT_MAX 9007199254740992.0

static bool whole(double v)
{
    return isfinite(v) && v >= -EXACT_MAX && v <= EXACT_MAX && v == floor(v);
}

bool ob_json_int(const cJSON *n, int64_t *out)
{
    if (!cJSON_IsNumber(n) || !whole(n->valuedouble))
        return false;
    *out = (int64_t)n->valuedouble;
    return true;
}

int64_t ob_json_int_or(const cJSON *n, int64_t def)
{
    int64_t v = def;

    ob_json_int(n, &v);
    return v;
}

void ob_json_num_text(double v, char *buf, size_t len)
{
    if (whole(v))
        snprintf(buf, len, "%" PRId64, (int64_t)v);
    else
        snprintf(buf, len, "%g", v);
}
