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

struct addrinfo;

/* The first IPv4 address of ai, else the first IPv6 one, as text into out
 * ("" when none): lws connects to one address only. */
void ob__dns_pick(const struct addrinfo *ai, char *out, size_t len);
/* True when host is a numeric IPv4 or IPv6 address (nothing to resolve). */
bool ob__dns_numeric(const char *host);
/* The cached address of host at now_ms, or NULL. */
const char *ob__dns_lookup(const struct ob__dns_cache *d, const char *host, uint64_t now_ms);
/* Remembers host -> addr for OB__DNS_TTL_MS (the oldest entry goes when full). */
void ob__dns_store(struct ob__dns_cache *d, const char *host, const char *addr, uint64_t now_ms);

#endif
