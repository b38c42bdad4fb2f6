/* The HTTP client's URL parser (src/http_url.c). Some URLs come from
 * outside: a Teams activity's serviceUrl, an LLM provider's base URL from a
 * config a user pastes. Oracles: what is accepted has a host that cannot
 * split the Host header and a path that cannot split the request line, a
 * port in range written in digits, and printing it back (scheme, Host
 * value, path) gives a URL that parses to the same thing. */
#include <ctype.h>
#include <strings.h>

#include "../../src/http_url.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static void no_splitters(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            abort();
}

static void check(const char *u, const struct ob__url *x)
{
    struct ob__url y;
    char *again;
    size_t hl = strlen(x->host);
    bool v6 = x->hosthdr[0] == '[';

    if (x->tls != (strncasecmp(u, "https://", 8) == 0))
        abort();
    if (!hl || hl >= sizeof(x->host) || strpbrk(x->host, "/?#@[]"))
        abort();
    if (!v6 && strchr(x->host, ':'))
        abort();
    no_splitters(x->host, hl);
    no_splitters(x->hosthdr, strlen(x->hosthdr));
    if (x->port < 1 || x->port > 65535)
        abort();
    if (x->path_len && x->path[0] != '/' && x->path[0] != '?')
        abort();
    if (memchr(x->path, '#', x->path_len))
        abort();
    no_splitters(x->path, x->path_len);
    /* Host: the host (bracketed when IPv6), then ":port" unless default */
    if (strncmp(x->hosthdr + v6, x->host, hl) || (v6 && x->hosthdr[hl + 1] != ']'))
        abort();
    {
        const char *rest = x->hosthdr + hl + 2 * v6;
        bool dflt = x->port == (x->tls ? 443 : 80);

        if (dflt ? *rest != '\0' && !(rest[0] == ':' && atoi(rest + 1) == x->port)
                 : (rest[0] != ':' || atoi(rest + 1) != x->port))
            abort();
        for (const char *d = rest[0] == ':' ? rest + 1 : rest; *d; d++)
            if (!isdigit((unsigned char)*d))
                abort();
    }
    /* as long as the input may be: a fixed buffer cut long paths short */
    again = malloc(strlen(x->hosthdr) + x->path_len + 16);
    if (!again)
        abort();
    sprintf(again, "%s://%s%.*s", x->tls ? "https" : "http", x->hosthdr, (int)x->path_len, x->path);
    if (ob__url_parse(again, &y) != 0 || y.tls != x->tls || y.port != x->port ||
        strcmp(y.host, x->host) || y.path_len != x->path_len ||
        memcmp(y.path, x->path, x->path_len))
        abort();
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *u = malloc(size + 1);
    struct ob__url x;

    if (!u)
        abort();
    memcpy(u, data, size);
    u[size] = '\0';
    if (strlen(u) == size && ob__url_parse(u, &x) == 0)
        check(u, &x);
    free(u);
    return 0;
}
