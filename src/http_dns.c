/* See http_dns.h. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "http_dns.h"
#include "opsbot/util.h"

void ob__dns_pick(const struct addrinfo *ai, char *out, size_t len)
{
    const struct addrinfo *v6 = NULL;

    out[0] = '\0';
    for (; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, out, len);
            return;
        }
        if (ai->ai_family == AF_INET6 && !v6)
            v6 = ai;
    }
    if (v6)
        uv_ip6_name((const struct sockaddr_in6 *)v6->ai_addr, out, len);
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
