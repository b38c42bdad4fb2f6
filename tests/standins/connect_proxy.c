/* See connect_proxy.h. Each accepted connection is a pair of TCP handles
 * (client side, target side) that live and die together. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connect_proxy.h"

#define HEAD_MAX 8192

struct pair;

struct connect_proxy {
    uv_tcp_t listener; /* first: its close callback frees the struct */
    uv_loop_t *loop;
    int port, forward_port;
    unsigned accepted, tunnels;
    char target[300], auth[300];
    struct pair *pairs;
    bool freeing;
};

struct pair {
    struct connect_proxy *p;
    struct pair *prev, *next;
    uv_tcp_t cli, up;
    uv_connect_t conn;
    bool up_open, closing;
    int open; /* handles not yet closed */
    char head[HEAD_MAX];
    size_t head_len;
    bool tunnel; /* relaying */
};

struct wreq {
    uv_write_t w;
    uv_buf_t buf;
};

static void pair_close(struct pair *pr);

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(sz);
    buf->len = buf->base ? sz : 0;
}

static void write_done(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;

    (void)status;
    free(wr->buf.base);
    free(wr);
}

/* Sends n bytes of data (copied) on s. */
static int send_copy(uv_tcp_t *s, const char *data, size_t n)
{
    struct wreq *wr = malloc(sizeof(*wr));

    if (!wr)
        return -1;
    wr->buf.base = malloc(n ? n : 1);
    if (!wr->buf.base) {
        free(wr);
        return -1;
    }
    memcpy(wr->buf.base, data, n);
    wr->buf.len = n;
    /* libuv copies the buffer list; a local one keeps GCC's object-size
     * checks (-O2 with ASan) quiet */
    uv_buf_t b = wr->buf;
    if (uv_write(&wr->w, (uv_stream_t *)s, &b, 1, write_done) != 0) {
        free(wr->buf.base);
        free(wr);
        return -1;
    }
    return 0;
}

static void relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct pair *pr = s->data;
    uv_tcp_t *other = (uv_tcp_t *)s == &pr->cli ? &pr->up : &pr->cli;

    if (n > 0 && !pr->closing && send_copy(other, buf->base, (size_t)n) != 0)
        n = UV_EOF;
    free(buf->base);
    if (n < 0)
        pair_close(pr);
}

static void start_relay(struct pair *pr, const char *extra, size_t n)
{
    pr->tunnel = true;
    if (n)
        send_copy(&pr->up, extra, n);
    uv_read_start((uv_stream_t *)&pr->cli, alloc_cb, relay_read);
    uv_read_start((uv_stream_t *)&pr->up, alloc_cb, relay_read);
}

static void up_connected(uv_connect_t *c, int status)
{
    struct pair *pr = c->data;
    char *end;
    size_t used;

    if (pr->closing)
        return;
    if (status < 0) {
        static const char bad[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";

        if (!pr->p->forward_port)
            send_copy(&pr->cli, bad, sizeof(bad) - 1);
        pair_close(pr);
        return;
    }
    pr->up_open = true;
    if (pr->p->forward_port) {
        start_relay(pr, NULL, 0);
        return;
    }
    pr->p->tunnels++;
    send_copy(&pr->cli, "HTTP/1.1 200 Connection established\r\n\r\n", 39);
    end = strstr(pr->head, "\r\n\r\n");
    used = (size_t)(end - pr->head) + 4;
    start_relay(pr, pr->head + used, pr->head_len - used);
}

/* Header value of name in the request head (NUL-terminated), into out. */
static void head_value(const char *head, const char *name, char *out, size_t len)
{
    const char *line = strstr(head, "\r\n");
    size_t nl = strlen(name);

    out[0] = '\0';
    while (line && line[2] != '\r') {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            size_t vl = strcspn(v, "\r\n");

            while (vl && *v == ' ') {
                v++;
                vl--;
            }
            snprintf(out, len, "%.*s", (int)vl, v);
            return;
        }
        line = strstr(line, "\r\n");
    }
}

/* The CONNECT request is complete: connect to its target. */
static void handle_connect(struct pair *pr)
{
    struct sockaddr_in sa;
    char host[256];
    int port = 0;

    if (sscanf(pr->head, "CONNECT %255[^: ]:%d HTTP/1.", host, &port) != 2 || port <= 0 ||
        uv_ip4_addr(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, port, &sa) != 0) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

        send_copy(&pr->cli, bad, sizeof(bad) - 1);
        pair_close(pr);
        return;
    }
    snprintf(pr->p->target, sizeof(pr->p->target), "%s:%d", host, port);
    head_value(pr->head, "proxy-authorization", pr->p->auth, sizeof(pr->p->auth));
    uv_read_stop((uv_stream_t *)&pr->cli);
    if (uv_tcp_connect(&pr->conn, &pr->up, (const struct sockaddr *)&sa, up_connected) != 0)
        pair_close(pr);
}

static void head_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct pair *pr = s->data;

    if (n > 0) {
        size_t take = (size_t)n;

        if (pr->head_len + take >= sizeof(pr->head))
            take = sizeof(pr->head) - 1 - pr->head_len;
        memcpy(pr->head + pr->head_len, buf->base, take);
        pr->head_len += take;
        pr->head[pr->head_len] = '\0';
    }
    free(buf->base);
    if (n < 0 || pr->head_len >= sizeof(pr->head) - 1) {
        pair_close(pr);
        return;
    }
    if (strstr(pr->head, "\r\n\r\n"))
        handle_connect(pr);
}

static void pair_closed(uv_handle_t *h)
{
    struct pair *pr = h->data;

    if (--pr->open == 0)
        free(pr);
}

static void pair_close(struct pair *pr)
{
    struct connect_proxy *p = pr->p;

    if (pr->closing)
        return;
    pr->closing = true;
    if (pr->prev)
        pr->prev->next = pr->next;
    else
        p->pairs = pr->next;
    if (pr->next)
        pr->next->prev = pr->prev;
    uv_close((uv_handle_t *)&pr->cli, pair_closed);
    uv_close((uv_handle_t *)&pr->up, pair_closed);
}

static void on_accept(uv_stream_t *srv, int status)
{
    struct connect_proxy *p = srv->data;
    struct pair *pr;

    if (status < 0 || p->freeing)
        return;
    pr = calloc(1, sizeof(*pr));
    if (!pr)
        return;
    pr->p = p;
    uv_tcp_init(p->loop, &pr->cli);
    uv_tcp_init(p->loop, &pr->up);
    pr->open = 2;
    pr->cli.data = pr->up.data = pr->conn.data = pr;
    pr->next = p->pairs;
    if (p->pairs)
        p->pairs->prev = pr;
    p->pairs = pr;
    if (uv_accept(srv, (uv_stream_t *)&pr->cli) != 0) {
        pair_close(pr);
        return;
    }
    p->accepted++;
    if (p->forward_port) {
        struct sockaddr_in sa;

        uv_ip4_addr("127.0.0.1", p->forward_port, &sa);
        if (uv_tcp_connect(&pr->conn, &pr->up, (const struct sockaddr *)&sa, up_connected) != 0)
            pair_close(pr);
        return;
    }
    uv_read_start((uv_stream_t *)&pr->cli, alloc_cb, head_read);
}

int connect_proxy_new(struct connect_proxy **out, uv_loop_t *loop, int forward_port)
{
    struct connect_proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in sa;
    int len = sizeof(sa), rc;

    *out = NULL;
    if (!p)
        return UV_ENOMEM;
    p->loop = loop;
    p->forward_port = forward_port;
    uv_tcp_init(loop, &p->listener);
    p->listener.data = p;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    rc = uv_tcp_bind(&p->listener, (const struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&p->listener, 64, on_accept);
    if (!rc)
        rc = uv_tcp_getsockname(&p->listener, (struct sockaddr *)&sa, &len);
    if (rc) {
        p->freeing = true;
        uv_close((uv_handle_t *)&p->listener, (uv_close_cb)free);
        return rc;
    }
    p->port = ntohs(sa.sin_port);
    *out = p;
    return 0;
}

int connect_proxy_port(const struct connect_proxy *p)
{
    return p->port;
}

unsigned connect_proxy_accepted(const struct connect_proxy *p)
{
    return p->accepted;
}

unsigned connect_proxy_tunnels(const struct connect_proxy *p)
{
    return p->tunnels;
}

const char *connect_proxy_last_target(const struct connect_proxy *p)
{
    return p->target;
}

const char *connect_proxy_last_auth(const struct connect_proxy *p)
{
    return p->auth;
}

void connect_proxy_free(struct connect_proxy *p)
{
    if (!p)
        return;
    p->freeing = true;
    while (p->pairs)
        pair_close(p->pairs);
    uv_close((uv_handle_t *)&p->listener, (uv_close_cb)free);
}
