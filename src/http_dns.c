/* See http_dns.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_dns.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

struct ob__dns_req {
    uv_getaddrinfo_t req;
    ob__dns_cb cb; /* NULL once dropped */
    void *owner;
    char host[256];
};

static void dns_done(uv_getaddrinfo_t *q, int status, struct addrinfo *ai)
{
    struct ob__dns_req *r = q->data;
    const struct addrinfo *v6 = NULL, *p;
    char addr[64] = "", why[320];

    for (p = status ? NULL : ai; p && !addr[0]; p = p->ai_next) {
        if (p->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)p->ai_addr, addr, sizeof(addr));
        else if (p->ai_family == AF_INET6 && !v6)
            v6 = p;
    }
    if (!addr[0] && v6)
        uv_ip6_name((const struct sockaddr_in6 *)v6->ai_addr, addr, sizeof(addr));
    uv_freeaddrinfo(ai);
    if (r->cb) {
        snprintf(why, sizeof(why), "cannot resolve %.180s: %s", r->host,
                 status ? uv_strerror(status) : "no address");
        r->cb(r->owner, addr[0] ? addr : NULL, why);
    }
    free(r);
}

int ob__dns_start(uv_loop_t *loop, const char *host, ob__dns_cb cb, void *owner,
                  struct ob__dns_req **out)
{
    struct ob__dns_req *r = calloc(1, sizeof(*r));
    struct addrinfo hints;
    int rc;

    *out = NULL;
    if (!r)
        return OB_ENOMEM;
    r->cb = cb;
    r->owner = owner;
    ob_strlcpy(r->host, host, sizeof(r->host));
    r->req.data = r;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = uv_getaddrinfo(loop, &r->req, dns_done, host, NULL, &hints);
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void ob__dns_drop(struct ob__dns_req *r)
{
    if (!r)
        return;
    r->cb = NULL;
    uv_cancel((uv_req_t *)&r->req); /* or dns_done frees it when it ends */
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
