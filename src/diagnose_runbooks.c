/* Runbooks: Markdown files split into sections at their headings and
 * ranked with BM25 (Robertson/Spärck Jones, k1 = 1.2, b = 0.75). Small and
 * local: a few hundred sections at most, scored by a linear scan. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

#define MAX_FILES 200
#define MAX_FILE_BYTES (256 * 1024)
#define MAX_SECTIONS 2000
#define MAX_TERMS 4096 /* distinct terms per section */
#define MAX_QUERY_TERMS 64
#define TERM_MAX 32
#define BM25_K1 1.2
#define BM25_B 0.75
#define HEADING_WEIGHT 2

struct term {
    char t[TERM_MAX];
    unsigned tf;
};

struct section {
    char *file, *heading, *text;
    struct term *terms; /* sorted by t */
    size_t nterms;
    unsigned len; /* terms in the section (weighted) */
};

struct ob_runbooks {
    struct section *s;
    size_t n;
    double avglen;
};

static const char *const stopwords[] = {
    "a",    "an",   "and",  "are",  "as", "at",   "be",   "by",   "for",   "from",  "has",
    "in",   "is",   "it",   "its",  "of", "on",   "or",   "that", "the",   "this",  "to",
    "was",  "were", "will", "with", "if", "then", "than", "so",   "we",    "you",   "your",
    "our",  "do",   "does", "not",  "no", "can",  "when", "what", "which", "there", "they",
    "them", "it's", "i",    "me",   "my", "all",  "any",  "but",  "into",  "out",   NULL};

static bool stopword(const char *w)
{
    for (size_t i = 0; stopwords[i]; i++)
        if (!strcmp(stopwords[i], w))
            return true;
    return false;
}

/* Next term of s at *pos (lower-case ASCII letters and digits; a few
 * suffixes folded so "restarts", "restarting" and "restart" meet). */
static bool next_term(const char *s, size_t len, size_t *pos, char out[TERM_MAX])
{
    size_t i = *pos;

    for (;;) {
        size_t n = 0;

        while (i < len && !isalnum((unsigned char)s[i]))
            i++;
        if (i >= len) {
            *pos = i;
            return false;
        }
        while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '\'')) {
            if (n < TERM_MAX - 1 && s[i] != '\'')
                out[n++] = (char)tolower((unsigned char)s[i]);
            i++;
        }
        out[n] = '\0';
        if (n >= 5 && !strcmp(out + n - 3, "ing"))
            out[n - 3] = '\0';
        else if (n >= 4 && !strcmp(out + n - 2, "es") && out[n - 3] != 's')
            out[n - 1] = '\0';
        else if (n >= 4 && out[n - 1] == 's' && out[n - 2] != 's')
            out[n - 1] = '\0';
        else if (n >= 5 && !strcmp(out + n - 2, "ed"))
            out[n - 2] = '\0';
        n = strlen(out);
        if (n >= 5 && out[n - 1] == 'e')
            out[n - 1] = '\0';
        if (out[0] && !stopword(out)) {
            *pos = i;
            return true;
        }
    }
}

static int cmp_term(const void *a, const void *b)
{
    return strcmp(((const struct term *)a)->t, ((const struct term *)b)->t);
}

static void add_terms(struct section *sec, const char *text, size_t len, unsigned weight)
{
    size_t pos = 0;
    char t[TERM_MAX];

    while (next_term(text, len, &pos, t)) {
        struct term *hit = NULL;

        sec->len += weight;
        for (size_t k = 0; k < sec->nterms; k++) {
            if (!strcmp(sec->terms[k].t, t)) {
                hit = &sec->terms[k];
                break;
            }
        }
        if (hit) {
            hit->tf += weight;
            continue;
        }
        if (sec->nterms == MAX_TERMS)
            continue;
        if (sec->nterms % 64 == 0) {
            struct term *nt = realloc(sec->terms, (sec->nterms + 64) * sizeof(*nt));

            if (!nt)
                continue;
            sec->terms = nt;
        }
        ob_strlcpy(sec->terms[sec->nterms].t, t, TERM_MAX);
        sec->terms[sec->nterms].tf = weight;
        sec->nterms++;
    }
}

static void recompute(struct ob_runbooks *rb)
{
    double sum = 0;

    for (size_t i = 0; i < rb->n; i++)
        sum += rb->s[i].len;
    rb->avglen = rb->n ? sum / (double)rb->n : 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *o = ob_xmalloc(n + 1);

    memcpy(o, s, n);
    o[n] = '\0';
    return o;
}

static int add_section(struct ob_runbooks *rb, const char *file, const char *head, size_t hlen,
                       const char *body, size_t blen)
{
    struct section *sec;

    while (blen && isspace((unsigned char)body[blen - 1]))
        blen--;
    while (blen && isspace((unsigned char)*body)) {
        body++;
        blen--;
    }
    if (!hlen && !blen)
        return 0;
    if (rb->n == MAX_SECTIONS)
        return OB_E2BIG;
    if (rb->n % 32 == 0) {
        struct section *ns = realloc(rb->s, (rb->n + 32) * sizeof(*ns));

        if (!ns)
            return OB_ENOMEM;
        rb->s = ns;
    }
    sec = &rb->s[rb->n++];
    memset(sec, 0, sizeof(*sec));
    sec->file = ob_xstrdup(file);
    sec->heading = dup_n(head, hlen);
    sec->text = dup_n(body, blen);
    /* the file's name is the section's topic too ("payments.md") */
    add_terms(sec, file, strcspn(file, "."), HEADING_WEIGHT);
    add_terms(sec, head, hlen, HEADING_WEIGHT);
    add_terms(sec, body, blen, 1);
    if (sec->nterms)
        qsort(sec->terms, sec->nterms, sizeof(*sec->terms), cmp_term);
    return 0;
}

struct ob_runbooks *ob_runbooks_new(void)
{
    return ob_xcalloc(1, sizeof(struct ob_runbooks));
}

int ob_runbooks_add(struct ob_runbooks *rb, const char *file, const char *text, size_t len)
{
    const char *head = "", *body = text;
    size_t hlen = 0, i = 0;
    bool fence = false;
    int rc = 0;

    if (!rb || !file || !text)
        return OB_EINVAL;
    while (i < len) {
        const char *line = text + i;
        size_t ll = 0, h = 0;

        while (i + ll < len && line[ll] != '\n')
            ll++;
        if (ll >= 3 && !strncmp(line, "```", 3))
            fence = !fence;
        while (h < ll && h < 6 && line[h] == '#')
            h++;
        if (!fence && h > 0 && h < ll && line[h] == ' ') {
            rc = add_section(rb, file, head, hlen, body, (size_t)(line - body));
            if (rc)
                break;
            head = line + h + 1;
            hlen = ll - h - 1;
            while (hlen &&
                   (head[hlen - 1] == ' ' || head[hlen - 1] == '#' || head[hlen - 1] == '\r'))
                hlen--;
            body = line + ll;
        }
        i += ll + 1;
    }
    if (!rc)
        rc = add_section(rb, file, head, hlen, body, (size_t)(text + len - body));
    recompute(rb);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ob_runbooks_load(struct ob_runbooks **out, const char *dir, struct ob_diag *d)
{
    struct ob_runbooks *rb;
    DIR *dp = opendir(dir);
    struct dirent *de;
    char *names[MAX_FILES];
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (!dp) {
        ob_diag_addf(d, "%s: diagnose.runbooks: cannot open the directory: %s", dir,
                     strerror(errno));
        return OB_ECONFIG;
    }
    while ((de = readdir(dp)) != NULL) {
        size_t l = strlen(de->d_name);

        if (l < 4 || strcmp(de->d_name + l - 3, ".md") || de->d_name[0] == '.')
            continue;
        if (n == MAX_FILES) {
            ob_diag_addf(d, "%s: diagnose.runbooks: more than %d Markdown files", dir, MAX_FILES);
            break;
        }
        names[n++] = ob_xstrdup(de->d_name);
    }
    closedir(dp);
    qsort(names, n, sizeof(*names), cmp_name);
    rb = ob_runbooks_new();
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        FILE *f;
        char *buf;
        size_t got;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        f = fopen(path, "rb");
        if (!f) {
            ob_diag_addf(d, "%s: diagnose.runbooks: cannot read: %s", path, strerror(errno));
            continue;
        }
        buf = ob_xmalloc(MAX_FILE_BYTES + 1);
        got = fread(buf, 1, MAX_FILE_BYTES + 1, f);
        fclose(f);
        if (got > MAX_FILE_BYTES) {
            ob_diag_addf(d, "%s: diagnose.runbooks: larger than %d KiB", path,
                         MAX_FILE_BYTES / 1024);
        } else if (!ob_utf8_valid(buf, got)) {
            ob_diag_addf(d, "%s: diagnose.runbooks: not valid UTF-8", path);
        } else if (ob_runbooks_add(rb, names[i], buf, got) == OB_E2BIG) {
            ob_diag_addf(d, "%s: diagnose.runbooks: more than %d sections in all", path,
                         MAX_SECTIONS);
            rc = OB_ECONFIG;
        }
        free(buf);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    *out = rb;
    return rc;
}

void ob_runbooks_free(struct ob_runbooks *rb)
{
    if (!rb)
        return;
    for (size_t i = 0; i < rb->n; i++) {
        free(rb->s[i].file);
        free(rb->s[i].heading);
        free(rb->s[i].text);
        free(rb->s[i].terms);
    }
    free(rb->s);
    free(rb);
}

size_t ob_runbooks_sections(const struct ob_runbooks *rb)
{
    return rb ? rb->n : 0;
}

static unsigned tf_of(const struct section *sec, const char *t)
{
    struct term key;
    const struct term *hit;

    ob_strlcpy(key.t, t, sizeof(key.t));
    hit =
        sec->nterms ? bsearch(&key, sec->terms, sec->nterms, sizeof(*sec->terms), cmp_term) : NULL;
    return hit ? hit->tf : 0;
}

size_t ob_runbooks_search(const struct ob_runbooks *rb, const char *query,
                          struct ob_runbook_hit *hits, size_t max)
{
    char q[MAX_QUERY_TERMS][TERM_MAX];
    size_t nq = 0, pos = 0, len, nh = 0;
    char t[TERM_MAX];

    if (!rb || !rb->n || !query || !hits || !max)
        return 0;
    len = strnlen(query, 4096);
    while (nq < MAX_QUERY_TERMS && next_term(query, len, &pos, t)) {
        bool dup = false;

        for (size_t k = 0; k < nq && !dup; k++)
            dup = !strcmp(q[k], t);
        if (!dup)
            ob_strlcpy(q[nq++], t, TERM_MAX);
    }
    for (size_t i = 0; i < rb->n; i++) {
        const struct section *sec = &rb->s[i];
        double score = 0;

        for (size_t k = 0; k < nq; k++) {
            unsigned tf = tf_of(sec, q[k]);
            size_t df = 0;
            double idf, norm;

            if (!tf)
                continue;
            for (size_t j = 0; j < rb->n; j++)
                df += tf_of(&rb->s[j], q[k]) > 0;
            idf = log(1.0 + ((double)rb->n - (double)df + 0.5) / ((double)df + 0.5));
            norm = BM25_K1 *
                   (1.0 - BM25_B + BM25_B * (double)sec->len / (rb->avglen ? rb->avglen : 1));
            score += idf * ((double)tf * (BM25_K1 + 1.0)) / ((double)tf + norm);
        }
        if (score <= 0)
            continue;
        /* insertion into the best max, ties keep index order */
        {
            size_t at = nh;

            while (at > 0 && hits[at - 1].score < score)
                at--;
            if (at >= max)
                continue;
            if (nh < max)
                nh++;
            memmove(&hits[at + 1], &hits[at], (nh - 1 - at) * sizeof(*hits));
            hits[at].file = sec->file;
            hits[at].heading = sec->heading;
            hits[at].text = sec->text;
            hits[at].score = score;
        }
    }
    return nh;
}

const char *ob_runbook_passage(const struct ob_runbook_hit *h, char *buf, size_t len)
{
    size_t o = 0;
    const char *s;
    bool space = false;

    if (!len)
        return buf;
    buf[0] = '\0';
    if (!h || !h->text)
        return buf;
    for (s = h->text; *s && o + 1 < len; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = o > 0;
            continue;
        }
        /* list markers and emphasis at the start of a line */
        if ((c == '-' || c == '*' || c == '>' || c == '#') && (s == h->text || s[-1] == '\n'))
            continue;
        if (c == '`')
            continue;
        if (space && o + 2 < len) {
            buf[o++] = ' ';
            space = false;
        }
        buf[o++] = (char)c;
    }
    buf[o] = '\0';
    if (*s && o > 3) {
        /* cut on a word boundary (never inside a UTF-8 sequence) and mark it */
        while (o > 0 && buf[o - 1] != ' ')
            o--;
        while (o > 0 && (buf[o - 1] == ' ' || buf[o - 1] == ',' || buf[o - 1] == ';'))
            o--;
        if (o + 4 <= len) {
            memcpy(buf + o, "\xe2\x80\xa6", 4); /* … */
        } else {
            buf[o] = '\0';
        }
    }
    return buf;
}
