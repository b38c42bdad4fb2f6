/* Private to src/http.c and src/lws.c: host names resolved off the loop,
 * and (for the HTTP client) a small cache of them. lws 4.1
 * (built without LWS_WITH_SYS_ASYNC_DNS) resolves with a blocking
 * getaddrinfo() on the loop for every connection; the client resolves names
 * itself with uv_getaddrinfo (the libuv thread pool) and hands lws the
 * numeric address, keeping the name for Host, SNI and the certificate
 * check. */
#ifndef OPSBOT_HTTP_DNS_H
#define OPSBOT_HTTP_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB__DNS_TTL_MS 60000u
#define OB__DNS_MAX 32

struct ob__dns_entry {
    char host[256];
    char addr[64]; /* numeric */
    uint64_t expires_ms;
};

struct ob__dns_cache {
    struct ob__dns_entry e[OB__DNS_MAX];
    size_t n, next;
};

#include <uv.h>

/* One lookup on libuv's thread pool. cb runs once, from the loop, with the
 * first IPv4 address of host (else the first IPv6 one: lws connects to one
 * address only) as text, or with addr NULL and why ("cannot resolve NAME:
 * ..."); never after ob__dns_drop. */
struct ob__dns_req;
typedef void (*ob__dns_cb)(void *owner, const char *addr, const char *why);
int ob__dns_start(uv_loop_t *loop, const char *host, ob__dns_cb cb, void *owner,
                  struct ob__dns_req **out);
/* The owner is gone: the lookup is cancelled (or its answer ignored). */
void ob__dns_drop(struct ob__dns_req *r);
/* True when host is a numeric IPv4 or IPv6 address (nothing to resolve). */
bool ob__dns_numeric(const char *host);
/* The cached address of host at now_ms, or NULL. */
const char *ob__dns_lookup(const struct ob__dns_cache *d, const char *host, uint64_t now_ms);
/* Remembers host -> addr for OB__DNS_TTL_MS (the oldest entry goes when full). */
void ob__dns_store(struct ob__dns_cache *d, const char *host, const char *addr, uint64_t now_ms);

#endif
