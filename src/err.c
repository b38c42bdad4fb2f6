#include <string.h>
#include <uv.h>

#include "opsbot/err.h"

const char *ob_strerror(int err)
{
    if (err == 0)
        return "ok";
    switch (err) {
#define OB_ERR_TEXT(name, code, text)                                                              \
    case code:                                                                                     \
        return text;
        OB_ERR_MAP(OB_ERR_TEXT)
#undef OB_ERR_TEXT
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return uv_strerror(err);
    return "unknown error";
}

const char *ob_err_name(int err)
{
    if (err == 0)
        return "OK";
    switch (err) {
#define OB_ERR_NAME(name, code, text)                                                              \
    case code:                                                                                     \
        return "OB_E" #name;
        OB_ERR_MAP(OB_ERR_NAME)
#undef OB_ERR_NAME
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return uv_err_name(err);
    return "UNKNOWN";
}
