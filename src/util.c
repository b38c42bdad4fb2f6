#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/util.h"

int64_t ob_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ob_time_format(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

int ob_time_parse(const char *s, int64_t *out_ms)
{
    struct tm tm;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, n = 0;

    if (!s || !*s)
        return OB_EINVAL;
    if (s[0] == '-') {
        char *end;
        long long v = strtoll(s + 1, &end, 10);
        int64_t unit;

        if (end == s + 1 || v < 0)
            return OB_EINVAL;
        if (!strcmp(end, "s"))
            unit = 1000;
        else if (!strcmp(end, "m"))
            unit = 60000;
        else if (!strcmp(end, "h"))
            unit = 3600000;
        else if (!strcmp(end, "d"))
            unit = 86400000;
        else
            return OB_EINVAL;
        *out_ms = ob_now_ms() - (int64_t)v * unit;
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return OB_EINVAL;
    s += n;
    if (*s == 'T' || *s == ' ') {
        int m = 0;

        if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &m) != 2)
            return OB_EINVAL;
        s += 1 + m;
        if (*s == ':') {
            if (sscanf(s + 1, "%2d%n", &sec, &m) != 1)
                return OB_EINVAL;
            s += 1 + m;
        }
        if (*s == 'Z')
            s++;
    }
    if (*s)
        return OB_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return OB_EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

size_t ob_strlcpy(char *dst, const char *src, size_t len)
{
    size_t n = strlen(src);

    if (len) {
        size_t c = n < len - 1 ? n : len - 1;

        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

static void oom(size_t n)
{
    fprintf(stderr,
            "{\"level\":\"error\",\"comp\":\"mem\",\"msg\":\"out of memory (%zu bytes)\"}\n", n);
    abort();
}

void *ob_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        oom(n);
    return p;
}

void *ob_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        oom(n * size);
    return p;
}

char *ob_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ob_xmalloc(n);

    memcpy(p, s, n);
    return p;
}

size_t ob_utf8_seq(const char *s, size_t left)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0], cp, min;
    size_t need;

    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        need = 1;
        min = 0x80;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        need = 2;
        min = 0x800;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        need = 3;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left <= need)
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need + 1;
}

bool ob_utf8_valid(const char *s, size_t len)
{
    size_t off = 0;

    while (off < len) {
        size_t n;

        if (s[off] == '\0')
            return false;
        n = ob_utf8_seq(s + off, len - off);
        if (!n)
            return false;
        off += n;
    }
    return true;
}

void ob_random_id(const char *prefix, char *buf, size_t len)
{
    unsigned char raw[6];
    char hex[13];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
    snprintf(buf, len, "%s%s", prefix, hex);
}

void ob_html_escape(void *file, const char *s)
{
    FILE *f = file;

    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
            break;
        }
    }
}

void ob_csv_field(void *file, const char *s)
{
    FILE *f = file;
    bool neuter;

    if (!s)
        s = "";
    neuter = *s && strchr("=+-@\t\r'", *s);
    if (!neuter && !strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    if (neuter)
        fputc('\'', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int ob_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ob_str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}
