/* The HTTP client's own connections and their keep-alive pool: see
 * http_conn.h and docs/TRANSPORT.md.
 *
 * TLS runs over two memory BIOs: what uv_read brings goes into the read
 * BIO, what OpenSSL writes into the write BIO goes out with uv_write. So
 * the socket stays libuv's alone (one uv_tcp_t per connection, the same
 * read and write paths for http and https), and OpenSSL never touches an
 * fd: no second poller on the same descriptor, no EAGAIN dance.
 *
 * Verification (unless the request is insecure): SSL_VERIFY_PEER, the host
 * name checked with SSL_set1_host (an IP literal with
 * X509_VERIFY_PARAM_set1_ip_asc), SNI for names only, ALPN http/1.1,
 * TLS 1.2 at least. A failure ends the connection with "TLS: ..." and the
 * reason, never anything from the request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "http_conn.h"
#include "http_dns.h"
#include "http_url.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "tls_trust.h"

#define READ_BUF (16u * 1024) /* a TLS record's plaintext at most */

enum cstate { C_CONNECTING, C_HANDSHAKE, C_BUSY, C_IDLE, C_CLOSING };

struct tls_entry {
    struct tls_entry *next;
    char *ca, *cert, *key;
    SSL_CTX *ctx;
};

struct ob__pool {
    uv_loop_t *loop;
    struct ob__conn *conns; /* open ones (not closing) */
    size_t nconns;          /* allocated ones, closing included */
    bool freeing;
    struct tls_entry *tls;
    char rbuf[READ_BUF]; /* what uv_read brings (one read at a time) */
    char pbuf[READ_BUF]; /* what SSL_read gives */
};

struct ob__conn {
    struct ob__pool *pool;
    struct ob__conn *prev, *next;
    enum cstate st;
    uv_tcp_t tcp;
    uv_timer_t idle; /* the idle timeout */
    uv_connect_t creq;
    int nhandles;
    SSL_CTX *tls;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool insecure;
    char host[OB__URL_MAX_HOST];
    int port;
    const struct ob__conn_ops *ops;
    void *owner;
};

struct wreq {
    uv_write_t w;
    struct ob__conn *c;
    char data[];
};

/* ---- TLS contexts --------------------------------------------------------- */

static void tls_entry_free(struct tls_entry *t)
{
    SSL_CTX_free(t->ctx);
    free(t->ca);
    free(t->cert);
    free(t->key);
    free(t);
}

/* A key with a passphrase must fail, never prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static const char *tls_load(SSL_CTX *ctx, const char *ca, const char *cert, const char *key)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (ca) {
        /* only that CA, as CURLOPT_CAINFO did */
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
            return "cannot load the CA file";
    } else {
        ob__tls_trust_os(ctx);
    }
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return "cannot load the client certificate";
    if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return "cannot load the client key";
    if (cert && key && SSL_CTX_check_private_key(ctx) != 1)
        return "the client key does not match the certificate";
    return NULL;
}

SSL_CTX *ob__pool_tls(struct ob__pool *p, const char *ca, const char *cert, const char *key,
                      const char **why)
{
    struct tls_entry *t;
    bool oom;

    *why = NULL;
    for (t = p->tls; t; t = t->next)
        if (ob_str_same(t->ca, ca) && ob_str_same(t->cert, cert) && ob_str_same(t->key, key))
            return t->ctx;
    t = calloc(1, sizeof(*t));
    if (!t) {
        *why = "out of memory";
        return NULL;
    }
    t->ca = ca ? strdup(ca) : NULL;
    t->cert = cert ? strdup(cert) : NULL;
    t->key = key ? strdup(key) : NULL;
    oom = (ca && !t->ca) || (cert && !t->cert) || (key && !t->key);
    ERR_clear_error();
    t->ctx = oom ? NULL : SSL_CTX_new(TLS_client_method());
    if (!t->ctx)
        *why = oom ? "out of memory" : "cannot create a TLS context";
    else
        *why = tls_load(t->ctx, ca, cert, key);
    ERR_clear_error();
    if (*why) {
        tls_entry_free(t);
        return NULL;
    }
    t->next = p->tls;
    p->tls = t;
    return t->ctx;
}

/* ---- lifetime ------------------------------------------------------------- */

int ob__pool_new(struct ob__pool **out, uv_loop_t *loop)
{
    struct ob__pool *p = calloc(1, sizeof(*p));

    *out = p;
    if (!p)
        return OB_ENOMEM;
    p->loop = loop;
    return 0;
}

static void pool_destroy(struct ob__pool *p)
{
    while (p->tls) {
        struct tls_entry *t = p->tls;

        p->tls = t->next;
        tls_entry_free(t);
    }
    free(p);
}

static void conn_closed(uv_handle_t *h)
{
    struct ob__conn *c = h->data;
    struct ob__pool *p = c->pool;

    if (--c->nhandles > 0)
        return;
    free(c);
    if (--p->nconns == 0 && p->freeing)
        pool_destroy(p);
}

void ob__conn_close(struct ob__conn *c)
{
    struct ob__pool *p;

    if (!c || c->st == C_CLOSING)
        return;
    p = c->pool;
    c->st = C_CLOSING;
    c->owner = NULL;
    c->ops = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->ssl) {
        SSL_free(c->ssl); /* with its BIOs */
        c->ssl = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->idle, conn_closed);
}

void ob__pool_free(struct ob__pool *p)
{
    if (!p)
        return;
    p->freeing = true;
    while (p->conns)
        ob__conn_close(p->conns);
    if (p->nconns == 0)
        pool_destroy(p);
}

size_t ob__pool_idle(const struct ob__pool *p)
{
    size_t n = 0;

    for (const struct ob__conn *c = p ? p->conns : NULL; c; c = c->next)
        n += c->st == C_IDLE;
    return n;
}

/* The owner's end: the connection is closed first. */
static void conn_end_as(struct ob__conn *c, const char *msg, bool whole)
{
    const struct ob__conn_ops *ops = c->ops;
    void *owner = c->owner;

    ob__conn_close(c);
    if (ops && owner)
        ops->end(owner, msg, whole);
}

static void conn_end(struct ob__conn *c, const char *msg)
{
    conn_end_as(c, msg, true);
}

/* ---- writing ----------------------------------------------------------------- */

static void written(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)w;
    struct ob__conn *c = r->c;

    free(r);
    if (status < 0 && status != UV_ECANCELED && c->st != C_CLOSING) {
        char msg[128];

        snprintf(msg, sizeof(msg), "cannot send the request: %s", uv_strerror(status));
        conn_end(c, msg);
    }
}

static int raw_write(struct ob__conn *c, const char *buf, size_t len, const char *from_bio)
{
    struct wreq *r = malloc(sizeof(*r) + len);
    uv_buf_t b;
    int rc;

    if (!r)
        return OB_ENOMEM;
    r->c = c;
    if (from_bio) {
        if (BIO_read(c->wbio, r->data, (int)len) != (int)len) {
            free(r);
            return OB_EHTTP;
        }
    } else {
        memcpy(r->data, buf, len);
    }
    b = uv_buf_init(r->data, (unsigned)len);
    rc = uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, written);
    if (rc) {
        free(r);
        return rc;
    }
    return 0;
}

/* Sends what OpenSSL wrote into the write BIO. */
static int tls_flush(struct ob__conn *c)
{
    size_t n = c->wbio ? BIO_ctrl_pending(c->wbio) : 0;

    return n ? raw_write(c, NULL, n, "bio") : 0;
}

int ob__conn_write(struct ob__conn *c, const char *buf, size_t len)
{
    int rc;

    if (!c || c->st != C_BUSY)
        return OB_EINVAL;
    if (!len)
        return 0;
    if (!c->ssl)
        return raw_write(c, buf, len, NULL);
    ERR_clear_error();
    /* a memory BIO takes everything: no partial writes */
    rc = SSL_write(c->ssl, buf, (int)len) == (int)len ? 0 : OB_EHTTP;
    ERR_clear_error();
    return rc ? rc : tls_flush(c);
}

/* ---- reading ------------------------------------------------------------------ */

/* The peer closed: notified says whether TLS said so first (close_notify). */
static void conn_eof(struct ob__conn *c, bool notified)
{
    char msg[OB__URL_MAX_HOST + 64];

    if (c->st == C_HANDSHAKE) {
        snprintf(msg, sizeof(msg), "TLS: handshake failed: connection closed (host %s)", c->host);
        conn_end(c, msg);
    } else {
        conn_end_as(c, NULL, !c->ssl || notified);
    }
}

static void tls_failed(struct ob__conn *c, const char *what)
{
    char msg[OB__URL_MAX_HOST + 160];
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    if (vr != X509_V_OK && !c->insecure)
        snprintf(msg, sizeof(msg), "TLS: certificate verify failed: %s (host %s)",
                 X509_verify_cert_error_string(vr), c->host);
    else
        snprintf(msg, sizeof(msg), "TLS: %s failed: %s (host %s)", what,
                 reason ? reason : "protocol error", c->host);
    ERR_clear_error();
    conn_end(c, msg);
}

static void tls_read(struct ob__conn *c)
{
    for (;;) {
        int r, e;

        ERR_clear_error();
        r = SSL_read(c->ssl, c->pool->pbuf, sizeof(c->pool->pbuf));
        if (r > 0) {
            if (c->st != C_BUSY) { /* idle: nobody asked for these */
                ob__conn_close(c);
                return;
            }
            c->ops->data(c->owner, c->pool->pbuf, (size_t)r);
            if (c->st == C_CLOSING)
                return;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if (tls_flush(c) != 0) {
            conn_end(c, "cannot send on the connection");
            return;
        }
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_ZERO_RETURN) /* close_notify */
            conn_eof(c, true);
        else
            tls_failed(c, "read");
        return;
    }
}

static void tls_input(struct ob__conn *c, const char *p, size_t n)
{
    if (BIO_write(c->rbio, p, (int)n) != (int)n) {
        conn_end(c, "out of memory");
        return;
    }
    if (c->st == C_HANDSHAKE) {
        int r, e;

        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
        if (tls_flush(c) != 0) {
            conn_end(c, "cannot send on the connection");
            return;
        }
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e != SSL_ERROR_NONE) {
            tls_failed(c, "handshake");
            return;
        }
        c->st = C_BUSY;
        c->ops->ready(c->owner);
        if (c->st == C_CLOSING)
            return;
    }
    tls_read(c);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct ob__conn *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->pool->rbuf, sizeof(c->pool->rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ob__conn *c = s->data;
    char msg[128];

    if (c->st == C_CLOSING || n == 0)
        return;
    if (n < 0) {
        if (n == UV_EOF || c->st == C_IDLE) {
            conn_eof(c, false);
            return;
        }
        snprintf(msg, sizeof(msg), "connection failed: %s", uv_strerror((int)n));
        conn_end(c, msg);
        return;
    }
    if (c->ssl) {
        tls_input(c, buf->base, (size_t)n);
        return;
    }
    if (c->st != C_BUSY) { /* stray bytes on an idle connection */
        ob__conn_close(c);
        return;
    }
    c->ops->data(c->owner, buf->base, (size_t)n);
}

/* ---- connecting ------------------------------------------------------------------- */

static int tls_start(struct ob__conn *c)
{
    bool ip = ob__dns_numeric(c->host);
    int r, e;

    ERR_clear_error();
    c->ssl = SSL_new(c->tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        return OB_ENOMEM;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    /* SNI for names only (RFC 6066: never an address) */
    if (!ip && SSL_set_tlsext_host_name(c->ssl, c->host) != 1)
        return OB_EHTTP;
    if (c->insecure) {
        SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) != 1
               : SSL_set1_host(c->ssl, c->host) != 1)
            return OB_EHTTP;
    }
    if (SSL_set_alpn_protos(c->ssl, (const unsigned char *)"\x08http/1.1", 9) != 0)
        return OB_EHTTP;
    c->st = C_HANDSHAKE;
    r = SSL_do_handshake(c->ssl);
    e = SSL_get_error(c->ssl, r);
    if (e != SSL_ERROR_WANT_READ)
        return OB_EHTTP;
    ERR_clear_error();
    return tls_flush(c);
}

static void connected(uv_connect_t *req, int status)
{
    struct ob__conn *c = req->data;
    char msg[160];

    if (status == UV_ECANCELED || c->st == C_CLOSING)
        return;
    if (status < 0) {
        snprintf(msg, sizeof(msg), "cannot connect: %s", uv_strerror(status));
        conn_end(c, msg);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        conn_end(c, "cannot connect: cannot read from the socket");
        return;
    }
    if (!c->tls) {
        c->st = C_BUSY;
        c->ops->ready(c->owner);
        return;
    }
    if (tls_start(c) != 0)
        tls_failed(c, "handshake");
}

static int conn_new(struct ob__pool *p, const struct ob__conn_key *k, const char *addr,
                    struct ob__conn **out, const char **why)
{
    struct sockaddr_storage ss;
    struct ob__conn *c;
    int rc;

    memset(&ss, 0, sizeof(ss));
    rc = strchr(addr, ':') ? uv_ip6_addr(addr, k->port, (struct sockaddr_in6 *)&ss)
                           : uv_ip4_addr(addr, k->port, (struct sockaddr_in *)&ss);
    if (rc) {
        *why = "bad address";
        return OB_EHTTP;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        *why = "out of memory";
        return OB_ENOMEM;
    }
    c->pool = p;
    c->tls = k->tls;
    c->insecure = k->insecure;
    ob_strlcpy(c->host, k->host, sizeof(c->host));
    c->port = k->port;
    c->st = C_CONNECTING;
    uv_tcp_init(p->loop, &c->tcp);
    uv_timer_init(p->loop, &c->idle);
    c->tcp.data = c->idle.data = c->creq.data = c;
    c->nhandles = 2;
    p->nconns++;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&ss, connected);
    if (rc) {
        *why = uv_strerror(rc);
        ob__conn_close(c);
        return OB_EHTTP;
    }
    *out = c;
    return 0;
}

/* ---- the pool ------------------------------------------------------------------------- */

static bool key_match(const struct ob__conn *c, const struct ob__conn_key *k)
{
    return c->tls == k->tls && c->insecure == k->insecure && c->port == k->port &&
           strcasecmp(c->host, k->host) == 0;
}

/* The peer has not closed the idle connection (or sent anything) in the
 * meantime, as far as the socket can tell without waiting. */
static bool still_open(struct ob__conn *c)
{
    uv_os_fd_t fd;
    char b;
    ssize_t r;

    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int ob__pool_get(struct ob__pool *p, const struct ob__conn_key *key, const char *addr, bool fresh,
                 const struct ob__conn_ops *ops, void *owner, struct ob__conn **out, bool *reused,
                 const char **why)
{
    struct ob__conn *c, *next;
    int rc;

    *out = NULL;
    *reused = false;
    *why = NULL;
    if (p->freeing) {
        *why = "the client is closing";
        return OB_EHTTP;
    }
    for (c = fresh ? NULL : p->conns; c; c = next) {
        next = c->next;
        if (c->st != C_IDLE || !key_match(c, key))
            continue;
        if (!still_open(c)) {
            ob__conn_close(c);
            continue;
        }
        uv_timer_stop(&c->idle);
        uv_ref((uv_handle_t *)&c->tcp);
        uv_ref((uv_handle_t *)&c->idle);
        c->st = C_BUSY;
        c->ops = ops;
        c->owner = owner;
        *out = c;
        *reused = true;
        return 0;
    }
    rc = conn_new(p, key, addr, &c, why);
    if (rc)
        return rc;
    c->ops = ops;
    c->owner = owner;
    *out = c;
    return 0;
}

static void idle_expired(uv_timer_t *t)
{
    ob__conn_close(t->data);
}

void ob__conn_release(struct ob__conn *c, bool reusable)
{
    struct ob__pool *p;
    struct ob__conn_key k;
    size_t idle = 0;

    if (!c || c->st == C_CLOSING)
        return;
    p = c->pool;
    /* unread bytes, or a request still being written: not reusable */
    if (c->ssl && (SSL_pending(c->ssl) > 0 || BIO_ctrl_pending(c->rbio) > 0))
        reusable = false;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0)
        reusable = false;
    k.tls = c->tls;
    k.insecure = c->insecure;
    k.host = c->host;
    k.port = c->port;
    for (const struct ob__conn *o = p->conns; o; o = o->next)
        idle += o->st == C_IDLE && key_match(o, &k);
    if (!reusable || p->freeing || c->st != C_BUSY || idle >= OB__POOL_IDLE_PER_KEY) {
        ob__conn_close(c);
        return;
    }
    c->st = C_IDLE;
    c->ops = NULL;
    c->owner = NULL;
    uv_timer_start(&c->idle, idle_expired, OB__POOL_IDLE_MS, 0);
    /* an idle connection never keeps the loop alive */
    uv_unref((uv_handle_t *)&c->tcp);
    uv_unref((uv_handle_t *)&c->idle);
}
