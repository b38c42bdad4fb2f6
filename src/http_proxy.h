/* Private to src/http.c and src/lws.c: the proxy settings of the environment
 * (https_proxy, http_proxy, no_proxy and their upper-case forms), read once
 * per client (and per lws context, for the websocket clients). Proxy strings are
 * "[user:pass@]host:port" as lws_set_proxy takes them; they may carry credentials and are never
 * logged whole. */
#ifndef OPSBOT_HTTP_PROXY_H
#define OPSBOT_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>

struct ob__proxy_env {
    char *http;     /* for http:// URLs, or NULL */
    char *https;    /* for https:// URLs, or NULL */
    char *no_proxy; /* the raw list, or NULL */
};

/* Reads the environment; 0 or OB_ENOMEM. Unsupported proxy schemes are
 * logged (without credentials) and ignored. */
int ob__proxy_env_load(struct ob__proxy_env *pe);
void ob__proxy_env_free(struct ob__proxy_env *pe);

/* The proxy to use for host:port (host without brackets), or NULL for a
 * direct connection (no proxy set, or no_proxy matches). */
const char *ob__proxy_for(const struct ob__proxy_env *pe, bool tls, const char *host, int port);

/* "host:port" of a proxy string, credentials left out (for logs). */
void ob__proxy_display(const char *proxy, char *out, size_t len);
/* The proxy's host (without brackets) into host[len]; false when it does
 * not fit. lws resolves a proxy's host with a blocking getaddrinfo() at
 * every connection: callers resolve it off the loop and hand lws the
 * address (ob__proxy_at). */
bool ob__proxy_host(const char *proxy, char *host, size_t len);
/* The proxy string with its host replaced by addr (numeric; IPv6 in
 * brackets), credentials kept; false when it does not fit. */
bool ob__proxy_at(const char *proxy, const char *addr, char *out, size_t len);
/* Points the proxy's client vhost at addr (ob__proxy_at + lws_set_proxy),
 * right before a connection through it, which reads it at once. */
struct lws_vhost;
bool ob__proxy_point(struct lws_vhost *vh, const char *proxy, const char *addr);

#endif
