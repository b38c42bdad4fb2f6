/* See http_url.h. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_url.h"
#include "opsbot/err.h"

/* RFC 3986: a reg-name or IPv4 address (letters, digits, unreserved
 * marks, %-escapes and sub-delims; other letters are written in punycode),
 * or inside brackets an IPv6 address (hex digits, ':' and '.') with an
 * optional zone after '%'. */
static bool host_ok(const char *h, size_t n, bool bracketed)
{
    bool zone = false;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];

        if (c >= 0x80 || !c)
            return false;
        if (bracketed && !zone) {
            if (c == '%')
                zone = true;
            else if (!isxdigit(c) && c != ':' && c != '.')
                return false;
        } else if (!isalnum(c) && !strchr(zone ? "-._~%" : "-._~%!$&'()*+,;=", c)) {
            return false;
        }
    }
    return true;
}

int ob__url_parse(const char *u, struct ob__url *out)
{
    const char *a, *end, *hs, *he, *colon = NULL;
    size_t n;
    bool br;

    memset(out, 0, sizeof(*out));
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return OB_EINVAL; /* nothing that could split the request line */
    if (strncasecmp(u, "http://", 7) == 0) {
        a = u + 7;
    } else if (strncasecmp(u, "https://", 8) == 0) {
        a = u + 8;
        out->tls = true;
    } else {
        return OB_EINVAL;
    }
    end = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(end - a)))
        return OB_EINVAL; /* no credentials in URLs */
    if (*a == '[') {
        hs = a + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            return OB_EINVAL;
        if (he + 1 < end) {
            if (he[1] != ':')
                return OB_EINVAL;
            colon = he + 1;
        }
    } else {
        hs = a;
        colon = memchr(a, ':', (size_t)(end - a));
        he = colon ? colon : end;
    }
    n = (size_t)(he - hs);
    if (!n || n >= sizeof(out->host) || !host_ok(hs, n, *a == '['))
        return OB_EINVAL;
    memcpy(out->host, hs, n);
    out->host[n] = '\0';
    out->port = out->tls ? 443 : 80;
    if (colon && colon + 1 < end) {
        long p = 0;

        /* digits only: strtol would take "+80" or " 80" */
        for (const char *d = colon + 1; d < end; d++) {
            if (*d < '0' || *d > '9' || p > 65535)
                return OB_EINVAL;
            p = p * 10 + (*d - '0');
        }
        if (p <= 0 || p > 65535)
            return OB_EINVAL;
        out->port = (int)p;
    }
    /* Host: rebuilt from what was parsed (the port in plain digits), so
     * it always fits and says what we connect to */
    br = *a == '[';
    if (out->port == (out->tls ? 443 : 80))
        snprintf(out->hosthdr, sizeof(out->hosthdr), "%s%s%s", br ? "[" : "", out->host,
                 br ? "]" : "");
    else
        snprintf(out->hosthdr, sizeof(out->hosthdr), "%s%s%s:%d", br ? "[" : "", out->host,
                 br ? "]" : "", out->port);
    out->path = end;
    out->path_len = strcspn(end, "#");
    return 0;
}
