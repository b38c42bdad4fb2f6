/* The HTTP client's response parser (src/http_parse.c): every byte of a
 * response comes from the server (or whatever answers on its address).
 * Input: one flags byte (bit 0: the request was HEAD, bit 1: the
 * connection closes after the input), four bytes seeding where the input
 * is split, then the response. Oracles: the input fed whole and fed in
 * pieces cut at pseudo-random points gives the same result (outcome,
 * error, status, reusability, body, bytes consumed, headers); a body never
 * holds more bytes than the input; only a complete response is reusable. */
#include "../../src/http_parse.h"
#include "fuzz_common.h"

#define MAX_HEAD 1024 /* small, so that the cap is reached too */

struct run {
    int rc;
    long status;
    bool reusable;
    const char *err;
    char *body;
    size_t body_len, used;
    char hdr[3][64];
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    struct run *r = ctx;

    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    return 0;
}

static uint32_t next(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* seed 0: whole; else pieces of pseudo-random sizes (1..16, or larger). */
static void run(struct run *r, const char *in, size_t len, unsigned flags, uint32_t seed)
{
    static const char *const names[3] = {"content-type", "x-ratelimit-remaining", "retry-after"};
    struct ob__hp p;
    size_t at = 0;

    r->body = malloc(len + 1);
    if (!r->body)
        abort();
    r->body_len = r->used = 0;
    ob__hp_init(&p, flags & 1, MAX_HEAD, on_body, r);
    r->rc = OB__HP_MORE;
    while (r->rc == OB__HP_MORE && (at < len || at == 0)) {
        size_t n = len - at, used;

        if (seed) {
            size_t k = next(&seed) % 8 ? 1 + next(&seed) % 16 : next(&seed) % 512;

            n = k < n ? k : n;
        }
        r->rc = ob__hp_feed(&p, in + at, n, &used);
        if (r->rc == OB__HP_MORE && used != n)
            abort();
        if (used > n)
            abort();
        r->used += used;
        at += n;
        if (!len)
            break;
    }
    if (r->rc == OB__HP_MORE && (flags & 2))
        r->rc = ob__hp_eof(&p);
    r->status = p.status;
    r->reusable = ob__hp_reusable(&p);
    r->err = r->rc == OB__HP_ERROR ? p.err : NULL;
    if (r->rc == OB__HP_ERROR && !r->err)
        abort();
    if (r->reusable && r->rc != OB__HP_DONE)
        abort();
    if (r->body_len > len)
        abort();
    if (p.headers && (p.status < 200 || p.status > 999))
        abort();
    for (int i = 0; i < 3; i++) {
        const char *v = ob__hp_header(&p, names[i]);

        snprintf(r->hdr[i], sizeof(r->hdr[i]), "%s", v ? v : "\x01none");
    }
    ob__hp_free(&p);
}

static void same(const struct run *a, const struct run *b)
{
    if (a->rc != b->rc || a->status != b->status || a->reusable != b->reusable)
        abort();
    if ((a->err || b->err) && (!a->err || !b->err || strcmp(a->err, b->err)))
        abort();
    if (a->rc != OB__HP_ERROR && a->used != b->used)
        abort();
    if (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len))
        abort();
    for (int i = 0; i < 3; i++)
        if (strcmp(a->hdr[i], b->hdr[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, split;
    uint32_t seed;

    if (size < 5)
        return 0;
    seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
           (uint32_t)data[4] << 24;
    run(&whole, (const char *)data + 5, size - 5, data[0], 0);
    run(&split, (const char *)data + 5, size - 5, data[0], seed | 1);
    same(&whole, &split);
    free(whole.body);
    free(split.body);
    return 0;
}
