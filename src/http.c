/* HTTP client: libcurl's multi interface driven by the libuv loop.
 *
 * curl tells us which sockets to watch (socket callback -> one uv_poll_t
 * per socket) and when it next wants to be called (timer callback -> one
 * uv_timer_t). Readiness and timer expiry go back to curl through
 * curl_multi_socket_action(); finished transfers are collected with
 * curl_multi_info_read(), removed from the multi handle, and only then
 * reported to their callback.
 *
 * Request headers and bodies carry tokens: they are never logged.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (4u * 1024 * 1024)
#define MAX_HEADER_BYTES (64u * 1024)
#define MAX_METHOD_LEN 16

struct http_sock {
    uv_poll_t poll;
    struct ob_http *h;
    curl_socket_t fd;
    struct http_sock *prev, *next;
    bool closing;
};

#define HTTP_POOL 16

struct ob_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct ob_http_call *calls; /* in flight */
    struct http_sock *socks;    /* watched sockets */
    size_t active;
    int depth;         /* > 0 while curl or a callback runs below us */
    bool freeing;      /* ob_http_free was called */
    bool free_pending; /* ob_http_free was called at depth > 0 */
    int open_handles;  /* uv handles not yet closed (timer + polls) */
    /* Finished easy handles, reset and kept for reuse: a new one per
     * request was most of the client's allocations in the profile. */
    CURL *pool[HTTP_POOL];
    size_t npool;
};

struct ob_http_call {
    struct ob_http *h;
    CURL *easy;
    struct curl_slist *headers;
    ob_http_cb cb;
    void *data;
    struct ob_http_call *prev, *next;
    /* response body, capped at max */
    char *body;
    size_t body_len, body_cap, max;
    bool truncated;
    bool oom;
    /* response headers of the last response: "name\0value\0" pairs */
    char *hdr;
    size_t hdr_len, hdr_cap;
    uint64_t start_ns;
    bool delivering;
    char errbuf[CURL_ERROR_SIZE];
};

static void check_multi_info(struct ob_http *h);
static void http_release(struct ob_http *h);

static bool curl_ready;

static int global_init(void)
{
    CURLcode cc;

    if (curl_ready)
        return 0;
    cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        ob_error("http", "curl_global_init: %s", curl_easy_strerror(cc));
        return OB_EHTTP;
    }
    curl_ready = true;
    return 0;
}

/* ---- handle bookkeeping ---------------------------------------------- */

static void handle_closed(struct ob_http *h)
{
    if (--h->open_handles == 0 && h->freeing)
        free(h);
}

static void timer_close_cb(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void sock_close_cb(uv_handle_t *handle)
{
    struct http_sock *s = handle->data;
    struct ob_http *h = s->h;

    free(s);
    handle_closed(h);
}

static void sock_close(struct http_sock *s)
{
    struct ob_http *h = s->h;

    if (s->closing)
        return;
    s->closing = true;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

/* ---- libuv -> curl ---------------------------------------------------- */

/* Called after every curl_multi_socket_action from an event of ours. */
static void after_action(struct ob_http *h)
{
    check_multi_info(h);
    if (h->depth == 0 && h->free_pending) {
        h->free_pending = false;
        http_release(h);
    }
}

static void poll_cb(uv_poll_t *handle, int status, int events)
{
    struct http_sock *s = handle->data;
    struct ob_http *h = s->h;
    int flags = 0, running = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    h->depth++;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    h->depth--;
    after_action(h);
}

static void timer_cb(uv_timer_t *timer)
{
    struct ob_http *h = timer->data;
    int running = 0;

    h->depth++;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    h->depth--;
    after_action(h);
}

/* ---- curl -> libuv ---------------------------------------------------- */

static int socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct ob_http *h = userp;
    struct http_sock *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(h->multi, fd, NULL);
            uv_poll_stop(&s->poll);
            sock_close(s);
        }
        return 0;
    }
    if (h->freeing)
        return 0;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->h = h;
        s->fd = fd;
        s->poll.data = s;
        s->next = h->socks;
        if (h->socks)
            h->socks->prev = s;
        h->socks = s;
        h->open_handles++;
        curl_multi_assign(h->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    if (events)
        uv_poll_start(&s->poll, events, poll_cb);
    else
        uv_poll_stop(&s->poll);
    return 0;
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    struct ob_http *h = userp;

    (void)multi;
    if (h->freeing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- per-transfer callbacks ------------------------------------------- */

static size_t write_fn(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct ob_http_call *c = userdata;
    size_t n = size * nmemb, take = n;

    if (c->body_len + take > c->max) {
        take = c->max - c->body_len;
        c->truncated = true;
    }
    if (c->body_len + take + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        char *nb;

        while (cap < c->body_len + take + 1)
            cap *= 2;
        if (cap > c->max + 1)
            cap = c->max + 1;
        nb = realloc(c->body, cap);
        if (!nb) {
            c->oom = true;
            return 0;
        }
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, ptr, take);
    c->body_len += take;
    c->body[c->body_len] = '\0';
    return take; /* short when truncated: curl stops the transfer */
}

/* Appends "name\0value\0" (both or nothing). */
static void hdr_append(struct ob_http_call *c, const char *name, size_t nlen, const char *val,
                       size_t vlen)
{
    size_t need = c->hdr_len + nlen + vlen + 2;

    if (need > c->hdr_cap) {
        size_t cap = c->hdr_cap ? c->hdr_cap : 1024;
        char *nb;

        while (cap < need)
            cap *= 2;
        nb = realloc(c->hdr, cap);
        if (!nb)
            return;
        c->hdr = nb;
        c->hdr_cap = cap;
    }
    memcpy(c->hdr + c->hdr_len, name, nlen);
    c->hdr_len += nlen;
    c->hdr[c->hdr_len++] = '\0';
    memcpy(c->hdr + c->hdr_len, val, vlen);
    c->hdr_len += vlen;
    c->hdr[c->hdr_len++] = '\0';
}

static size_t header_fn(char *line, size_t size, size_t nitems, void *userdata)
{
    struct ob_http_call *c = userdata;
    size_t n = size * nitems, name_len, vstart, vend;
    const char *colon;

    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        c->hdr_len = 0; /* a new response (after 100 Continue): keep only the last */
        return n;
    }
    colon = memchr(line, ':', n);
    if (!colon)
        return n; /* the blank line or an obs-fold line */
    name_len = (size_t)(colon - line);
    vstart = name_len + 1;
    vend = n;
    while (vend > vstart && (line[vend - 1] == '\r' || line[vend - 1] == '\n' ||
                             line[vend - 1] == ' ' || line[vend - 1] == '\t'))
        vend--;
    while (vstart < vend && (line[vstart] == ' ' || line[vstart] == '\t'))
        vstart++;
    if (name_len == 0 || c->hdr_len + n + 2 > MAX_HEADER_BYTES)
        return n; /* capped: further headers are ignored */
    if (memchr(line, '\0', n))
        return n;
    hdr_append(c, line, name_len, line + vstart, vend - vstart);
    return n;
}

/* ---- calls -------------------------------------------------------------- */

static void call_unlink(struct ob_http_call *c)
{
    struct ob_http *h = c->h;

    if (c->prev)
        c->prev->next = c->next;
    else
        h->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    h->active--;
}

static void call_free(struct ob_http_call *c)
{
    if (!c)
        return;
    if (c->easy) {
        struct ob_http *h = c->h;

        if (h && !h->freeing && h->npool < HTTP_POOL) {
            curl_easy_reset(c->easy);
            h->pool[h->npool++] = c->easy;
        } else {
            curl_easy_cleanup(c->easy);
        }
    }
    curl_slist_free_all(c->headers);
    free(c->body);
    free(c->hdr);
    free(c);
}

static void complete(struct ob_http *h, struct ob_http_call *c, CURLcode result)
{
    struct ob_http_resp resp = {0};
    long status = 0;

    curl_multi_remove_handle(h->multi, c->easy);
    call_unlink(c);
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    resp.status = status;
    resp.duration_ms = (int64_t)((uv_hrtime() - c->start_ns) / 1000000u);
    if (c->oom) {
        resp.err = OB_ENOMEM;
    } else if (c->truncated) {
        resp.err = OB_E2BIG;
    } else if (result == CURLE_OPERATION_TIMEDOUT) {
        resp.err = OB_ETIMEOUT;
    } else if (result != CURLE_OK) {
        resp.err = OB_EHTTP;
    }
    if (resp.err == OB_ETIMEOUT || resp.err == OB_EHTTP)
        ob_strlcpy(resp.errmsg, c->errbuf[0] ? c->errbuf : curl_easy_strerror(result),
                   sizeof(resp.errmsg));
    resp.body = c->body ? c->body : (char *)"";
    resp.body_len = c->body_len;
    resp.priv_ = c;
    c->delivering = true;
    c->cb(c->data, &resp);
    call_free(c);
}

static void check_multi_info(struct ob_http *h)
{
    CURLMsg *msg;
    int pending = 0;

    h->depth++;
    while (!h->free_pending && !h->freeing) {
        struct ob_http_call *c = NULL;
        CURLcode result;

        msg = curl_multi_info_read(h->multi, &pending);
        if (!msg)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        result = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c)
            complete(h, c, result);
    }
    h->depth--;
}

static bool token_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if (n >= max || *s < 'A' || *s > 'Z')
            return false;
    return n > 0;
}

static bool header_ok(const char *s)
{
    return !strpbrk(s, "\r\n") && strchr(s, ':') && s[0] != ':';
}

static int setup_easy(struct ob_http_call *c, const struct ob_http_req *req)
{
    static bool warned;
    CURL *e = c->easy;
    CURLcode cc = CURLE_OK;
    int64_t tmo = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_PRIVATE, c);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TIMEOUT_MS, (long)tmo);
    SET(CURLOPT_WRITEFUNCTION, write_fn);
    SET(CURLOPT_WRITEDATA, c);
    SET(CURLOPT_HEADERFUNCTION, header_fn);
    SET(CURLOPT_HEADERDATA, c);
    SET(CURLOPT_USERAGENT, "opsbot/" OB_VERSION);
    if (strcmp(req->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(req->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, req->method);
        if (strcmp(req->method, "POST") == 0 || req->body) {
            SET(CURLOPT_POST, 1L);
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
            SET(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
        }
    }
    if (c->headers)
        SET(CURLOPT_HTTPHEADER, c->headers);
    if (req->ca_file)
        SET(CURLOPT_CAINFO, req->ca_file);
    if (req->cert_file)
        SET(CURLOPT_SSLCERT, req->cert_file);
    if (req->key_file)
        SET(CURLOPT_SSLKEY, req->key_file);
    if (req->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
        if (!warned) {
            warned = true;
            ob_warn("http", "TLS verification is disabled for some requests (insecure)");
        }
    }
#undef SET
    if (cc != CURLE_OK) {
        ob_error("http", "cannot set up a request: %s", curl_easy_strerror(cc));
        return OB_EHTTP;
    }
    return 0;
}

/* ---- public ------------------------------------------------------------- */

int ob_http_new(struct ob_http **out, uv_loop_t *loop)
{
    struct ob_http *h;
    int rc;

    *out = NULL;
    rc = global_init();
    if (rc)
        return rc;
    h = calloc(1, sizeof(*h));
    if (!h)
        return OB_ENOMEM;
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return OB_ENOMEM;
    }
    rc = uv_timer_init(loop, &h->timer);
    if (rc) {
        curl_multi_cleanup(h->multi);
        free(h);
        return rc;
    }
    h->timer.data = h;
    h->open_handles = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    return 0;
}

/* Cancels every transfer, tears curl down and closes the uv handles; h is
 * freed by the last close callback. */
static void http_release(struct ob_http *h)
{
    while (h->calls) {
        struct ob_http_call *c = h->calls;

        curl_multi_remove_handle(h->multi, c->easy);
        call_unlink(c);
        call_free(c);
    }
    curl_multi_cleanup(h->multi); /* may still report CURL_POLL_REMOVE */
    h->multi = NULL;
    while (h->npool)
        curl_easy_cleanup(h->pool[--h->npool]);
    while (h->socks) {
        uv_poll_stop(&h->socks->poll);
        sock_close(h->socks);
    }
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, timer_close_cb);
}

void ob_http_free(struct ob_http *h)
{
    if (!h || h->freeing)
        return;
    h->freeing = true;
    if (h->depth > 0) {
        h->free_pending = true; /* finished when the stack unwinds */
        return;
    }
    http_release(h);
}

int ob_http_request(struct ob_http *h, const struct ob_http_req *req, ob_http_cb cb, void *data,
                    struct ob_http_call **call_out)
{
    struct ob_http_call *c;
    CURLMcode mc;
    int rc;

    if (call_out)
        *call_out = NULL;
    if (!h || !req || !req->url || !cb || h->freeing)
        return OB_EINVAL;
    if (!req->method || !token_ok(req->method, MAX_METHOD_LEN))
        return OB_EINVAL;
    if (req->body_len && !req->body)
        return OB_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return OB_ENOMEM;
    c->h = h;
    c->cb = cb;
    c->data = data;
    c->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    for (const char *const *p = req->headers; p && *p; p++) {
        struct curl_slist *n;

        if (!header_ok(*p)) {
            rc = OB_EINVAL;
            goto out;
        }
        n = curl_slist_append(c->headers, *p);
        if (!n) {
            rc = OB_ENOMEM;
            goto out;
        }
        c->headers = n;
    }
    /* no "Expect: 100-continue" round trip for large bodies */
    if (req->body) {
        struct curl_slist *n = curl_slist_append(c->headers, "Expect:");

        if (!n) {
            rc = OB_ENOMEM;
            goto out;
        }
        c->headers = n;
    }
    c->easy = h->npool ? h->pool[--h->npool] : curl_easy_init();
    if (!c->easy) {
        rc = OB_ENOMEM;
        goto out;
    }
    rc = setup_easy(c, req);
    if (rc)
        goto out;
    c->start_ns = uv_hrtime();
    mc = curl_multi_add_handle(h->multi, c->easy);
    if (mc != CURLM_OK) {
        ob_error("http", "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        rc = OB_EHTTP;
        goto out;
    }
    c->next = h->calls;
    if (h->calls)
        h->calls->prev = c;
    h->calls = c;
    h->active++;
    if (call_out)
        *call_out = c;
    return 0;
out:
    call_free(c);
    return rc;
}

void ob_http_cancel(struct ob_http_call *call)
{
    struct ob_http *h;

    if (!call || call->delivering)
        return; /* already completed: its callback is running */
    h = call->h;
    curl_multi_remove_handle(h->multi, call->easy);
    call_unlink(call);
    call_free(call);
}

size_t ob_http_active(const struct ob_http *h)
{
    return h ? h->active : 0;
}

const char *ob_http_resp_header(const struct ob_http_resp *resp, const char *name)
{
    const struct ob_http_call *c;
    const char *found = NULL;
    size_t off = 0;

    if (!resp || !name || !resp->priv_)
        return NULL;
    c = resp->priv_;
    while (off < c->hdr_len) {
        const char *n = c->hdr + off;
        const char *v = n + strlen(n) + 1;

        if ((size_t)(v - c->hdr) >= c->hdr_len)
            break;
        if (strcasecmp(n, name) == 0)
            found = v;
        off = (size_t)(v - c->hdr) + strlen(v) + 1;
    }
    return found;
}

char *ob_http_escape(const char *s)
{
    size_t n;
    char *esc, *out;

    if (!s)
        return NULL;
    n = strlen(s);
    if (n > (size_t)(1 << 30))
        return NULL;
    if (global_init())
        return NULL;
    esc = curl_easy_escape(NULL, s, (int)n);
    if (!esc)
        return NULL;
    out = strdup(esc);
    curl_free(esc);
    return out;
}
