#include "opsbot/json.h"
#include "opsbot/util.h"

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
