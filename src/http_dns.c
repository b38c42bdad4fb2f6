/* See http_dns.h. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "http_dns.h"
#include "opsbot/util.h"

int ob__dns_resolve(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *host)
{
    struct addrinfo hints;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    return uv_getaddrinfo(loop, req, cb, host, NULL, &hints);
}

void ob__dns_take(int status, struct addrinfo *ai, char *out, size_t len)
{
    const struct addrinfo *v6 = NULL, *p;

    out[0] = '\0';
    for (p = status ? NULL : ai; p; p = p->ai_next) {
        if (p->ai_family == AF_INET) {
            uv_ip4_name((const struct sockaddr_in *)p->ai_addr, out, len);
            break;
        }
        if (p->ai_family == AF_INET6 && !v6)
            v6 = p;
    }
    if (!out[0] && v6)
        uv_ip6_name((const struct sockaddr_in6 *)v6->ai_addr, out, len);
    uv_freeaddrinfo(ai);
}

bool ob__dns_numeric(const char *host)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

const char *ob__dns_lookup(const struct ob__dns_cache *d, const char *host, uint64_t now_ms)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].expires_ms > now_ms && strcasecmp(d->e[i].host, host) == 0)
            return d->e[i].addr;
    return NULL;
}

void ob__dns_store(struct ob__dns_cache *d, const char *host, const char *addr, uint64_t now_ms)
{
    struct ob__dns_entry *e = NULL;

    if (strlen(host) >= sizeof(e->host) || strlen(addr) >= sizeof(e->addr))
        return;
    for (size_t i = 0; i < d->n && !e; i++)
        if (strcasecmp(d->e[i].host, host) == 0)
            e = &d->e[i];
    if (!e && d->n < OB__DNS_MAX)
        e = &d->e[d->n++];
    if (!e)
        e = &d->e[d->next++ % OB__DNS_MAX];
    ob_strlcpy(e->host, host, sizeof(e->host));
    ob_strlcpy(e->addr, addr, sizeof(e->addr));
    e->expires_ms = now_ms + OB__DNS_TTL_MS;
}
