/* Proxy settings from the environment, as libcurl read them: https_proxy /
 * HTTPS_PROXY for https URLs, http_proxy / HTTP_PROXY for http URLs, and
 * no_proxy / NO_PROXY (comma list; "*" = everything; an entry matches the
 * host itself and its subdomains, a leading dot is ignored, an optional
 * ":port" restricts it to that port). Only plain http:// proxies (CONNECT
 * tunnels) are supported. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "http_proxy.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define DEFAULT_PROXY_PORT 1080 /* libcurl's default */

static const char *env2(const char *lower, const char *upper)
{
    const char *v = getenv(lower);

    if (!v || !*v)
        v = getenv(upper);
    return v && *v ? v : NULL;
}

/* Percent-decodes the user:pass part in place (as libcurl does). */
static void decode_userinfo(char *s, size_t n)
{
    size_t r = 0, w = 0;

    while (r < n) {
        if (s[r] == '%' && r + 2 < n && ob_hexval(s[r + 1]) >= 0 && ob_hexval(s[r + 2]) >= 0) {
            s[w++] = (char)(ob_hexval(s[r + 1]) * 16 + ob_hexval(s[r + 2]));
            r += 3;
        } else {
            s[w++] = s[r++];
        }
    }
    memmove(s + w, s + n, strlen(s + n) + 1);
}

/* "[http://][user:pass@]host[:port][/...]" -> malloc'd "[user:pass@]host:port";
 * *out NULL when unset or unsupported. */
static int normalize(const char *v, const char *name, char **out)
{
    const char *sep;
    char *s, *at, *host, *end;
    size_t n;

    *out = NULL;
    if (!v)
        return 0;
    sep = strstr(v, "://");
    if (sep) {
        if ((size_t)(sep - v) != 4 || strncasecmp(v, "http", 4) != 0) {
            ob_warn("http", "%s: only http:// proxies are supported; ignored", name);
            return 0;
        }
        v = sep + 3;
    }
    n = strcspn(v, "/?#");
    s = malloc(n + 8);
    if (!s)
        return OB_ENOMEM;
    memcpy(s, v, n);
    s[n] = '\0';
    at = strrchr(s, '@');
    if (at)
        decode_userinfo(s, (size_t)(at - s));
    at = strrchr(s, '@');
    host = at ? at + 1 : s;
    end = host[0] == '[' ? strchr(host, ']') : host;
    if (!*host || !end || strpbrk(s, " \t\r\n")) {
        ob_warn("http", "%s: not a proxy address; ignored", name);
        free(s);
        return 0;
    }
    if (!strchr(end, ':'))
        snprintf(s + strlen(s), 8, ":%d", DEFAULT_PROXY_PORT);
    *out = s;
    return 0;
}

int ob__proxy_env_load(struct ob__proxy_env *pe)
{
    const char *np = env2("no_proxy", "NO_PROXY");
    int rc;

    memset(pe, 0, sizeof(*pe));
    rc = normalize(env2("http_proxy", "HTTP_PROXY"), "http_proxy", &pe->http);
    if (!rc)
        rc = normalize(env2("https_proxy", "HTTPS_PROXY"), "https_proxy", &pe->https);
    if (!rc && np) {
        pe->no_proxy = strdup(np);
        if (!pe->no_proxy)
            rc = OB_ENOMEM;
    }
    if (rc)
        ob__proxy_env_free(pe);
    return rc;
}

void ob__proxy_env_free(struct ob__proxy_env *pe)
{
    free(pe->http);
    free(pe->https);
    free(pe->no_proxy);
    memset(pe, 0, sizeof(*pe));
}

/* One no_proxy entry (trimmed, length n) against host:port. */
static bool entry_matches(const char *e, size_t n, const char *host, int port)
{
    size_t hl = strlen(host);
    const char *colon;

    if (n == 1 && e[0] == '*')
        return true;
    if (n && e[0] == '[') { /* [v6] or [v6]:port */
        const char *rb = memchr(e, ']', n);

        if (!rb)
            return false;
        if ((size_t)(rb - e) + 1 < n) {
            if (rb[1] != ':' || atoi(rb + 2) != port)
                return false;
        }
        return (size_t)(rb - e - 1) == hl && strncasecmp(e + 1, host, hl) == 0;
    }
    colon = memchr(e, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - e) - 1)) {
        if (atoi(colon + 1) != port)
            return false;
        n = (size_t)(colon - e);
    }
    while (n && e[0] == '.') {
        e++;
        n--;
    }
    if (!n || n > hl)
        return false;
    if (strncasecmp(host + hl - n, e, n) != 0)
        return false;
    return n == hl || host[hl - n - 1] == '.';
}

static bool no_proxy_matches(const char *list, const char *host, int port)
{
    const char *p = list;

    while (p && *p) {
        size_t n = strcspn(p, ",");
        const char *e = p;
        size_t en = n;

        while (en && isspace((unsigned char)e[0])) {
            e++;
            en--;
        }
        while (en && isspace((unsigned char)e[en - 1]))
            en--;
        if (en && entry_matches(e, en, host, port))
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

const char *ob__proxy_for(const struct ob__proxy_env *pe, bool tls, const char *host, int port)
{
    const char *proxy = tls ? pe->https : pe->http;

    if (!proxy)
        return NULL;
    if (pe->no_proxy && no_proxy_matches(pe->no_proxy, host, port))
        return NULL;
    return proxy;
}

void ob__proxy_display(const char *proxy, char *out, size_t len)
{
    const char *at = strrchr(proxy, '@');

    ob_strlcpy(out, at ? at + 1 : proxy, len);
}

/* Where the host of "[user:pass@]host:port" starts, and its length. */
static const char *host_span(const char *proxy, size_t *n)
{
    const char *at = strrchr(proxy, '@');
    const char *h = at ? at + 1 : proxy;
    const char *colon;

    if (*h == '[') {
        const char *end = strchr(h, ']');

        *n = end ? (size_t)(end - h - 1) : 0;
        return end ? h + 1 : NULL;
    }
    colon = strrchr(h, ':');
    *n = colon ? (size_t)(colon - h) : strlen(h);
    return h;
}

bool ob__proxy_host(const char *proxy, char *host, size_t len)
{
    size_t n;
    const char *h = host_span(proxy, &n);

    if (!h || !n || n >= len)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    return true;
}

bool ob__proxy_at(const char *proxy, const char *addr, char *out, size_t len)
{
    size_t n;
    const char *h = host_span(proxy, &n);
    bool v6 = strchr(addr, ':') != NULL, bracket;
    int w;

    if (!h || !n)
        return false;
    bracket = h > proxy && h[-1] == '[';
    /* credentials, the address, then ":port" (after the ']' of a literal) */
    w = snprintf(out, len, "%.*s%s%s%s%s", (int)(h - proxy) - bracket, proxy, v6 ? "[" : "", addr,
                 v6 ? "]" : "", h + n + bracket);
    return w > 0 && (size_t)w < len;
}

bool ob__proxy_point(struct lws_vhost *vh, const char *proxy, const char *addr)
{
    char at[1024];

    return ob__proxy_at(proxy, addr, at, sizeof(at)) && lws_set_proxy(vh, at) == 0;
}
