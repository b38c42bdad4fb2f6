/* Private to src/http.c: the HTTP client's own connections for direct
 * (non-proxied) requests, and their keep-alive pool. libuv TCP, OpenSSL
 * over memory BIOs for https. See docs/TRANSPORT.md, "Connections".
 *
 * A connection belongs to one request at a time (its owner), which gets
 * ready (connected, TLS handshake done and verified), data (response
 * bytes, decrypted) and end (EOF, or a failure with a message) through
 * ob__conn_ops; end comes once and the connection is closed by then. The
 * owner gives it back with ob__conn_release (kept idle when reusable) or
 * ob__conn_close. No callback runs from inside ob__pool_get,
 * ob__conn_write, ob__conn_release or ob__conn_close. */
#ifndef OPSBOT_HTTP_CONN_H
#define OPSBOT_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#define OB__POOL_IDLE_PER_KEY 16
#define OB__POOL_IDLE_MS 15000u

struct ob__pool;
struct ob__conn;

struct ob__conn_ops {
    void (*ready)(void *owner);
    void (*data)(void *owner, const char *p, size_t n);
    /* msg NULL: the peer closed the connection; whole then says the close
     * itself can be trusted (plain TCP, or TLS after close_notify) rather
     * than a bare FIN under TLS, which anyone on the path can send. Else
     * what failed ("cannot connect: ...", "TLS: ..."). */
    void (*end)(void *owner, const char *msg, bool whole);
};

/* What a connection may be reused for: the same TLS context (NULL: plain
 * http), verification mode, host (the URL's, without brackets) and port. */
struct ob__conn_key {
    SSL_CTX *tls;
    bool insecure;
    const char *host;
    int port;
};

int ob__pool_new(struct ob__pool **out, uv_loop_t *loop);
/* Closes every connection (their owners hear nothing more); the pool goes
 * when the last one's handles are closed (the loop must run). */
void ob__pool_free(struct ob__pool *p);

/* The TLS context for a CA file (NULL: the system's trust), client
 * certificate and key (NULL: none), created on first use, freed with the
 * pool. NULL with *why set when a file cannot be loaded. */
SSL_CTX *ob__pool_tls(struct ob__pool *p, const char *ca, const char *cert, const char *key,
                      const char **why);

/* An idle connection for key (unless fresh), else a new one to addr (the
 * numeric address of key->host). *reused says which: a reused one is ready
 * now (no ready callback); a new one calls ready once connected. 0, or an
 * error with *why (nothing started). */
int ob__pool_get(struct ob__pool *p, const struct ob__conn_key *key, const char *addr, bool fresh,
                 const struct ob__conn_ops *ops, void *owner, struct ob__conn **out, bool *reused,
                 const char **why);

/* Queues bytes (copied) for the peer; 0 or an error. */
int ob__conn_write(struct ob__conn *c, const char *buf, size_t len);
/* The owner is done: back to the pool's idle list when reusable (and
 * nothing unread is pending), else closed. */
void ob__conn_release(struct ob__conn *c, bool reusable);
/* Closed at once; the owner hears nothing more. */
void ob__conn_close(struct ob__conn *c);

/* Counters for the tests. */
size_t ob__pool_idle(const struct ob__pool *p);

#endif
