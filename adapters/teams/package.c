/* The Teams app package (`opsbot teams package`): manifest.json from the
 * template in deploy/teams/ with the configured app id, plus the two icons,
 * written as a ZIP archive (stored entries, CRC-32 computed here: no zlib
 * needed). Entries carry a fixed timestamp so that the same inputs give the
 * same bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opsbot/err.h"
#include "opsbot/teams.h"
#include "opsbot/util.h"

#define FILE_MAX (1024 * 1024)
#define DOS_DATE ((2026 - 1980) << 9 | 1 << 5 | 1) /* 2026-01-01 */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static int slurp(const char *dir, const char *name, unsigned char **out, size_t *len, char *err,
                 size_t errlen)
{
    char path[1024];
    FILE *f;
    unsigned char *buf;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -errno;
    }
    buf = malloc(FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return OB_ENOMEM;
    }
    n = fread(buf, 1, FILE_MAX + 1, f);
    fclose(f);
    if (n > FILE_MAX) {
        free(buf);
        snprintf(err, errlen, "%s is larger than 1 MiB", path);
        return OB_E2BIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Replaces every occurrence of key in s (malloc'd result). */
static char *replace_all(const char *s, const char *key, const char *val)
{
    size_t kl = strlen(key), vl = strlen(val), n = 0, o = 0;
    char *out;

    for (const char *p = strstr(s, key); p; p = strstr(p + kl, key))
        n++;
    out = malloc(strlen(s) + n * vl + 1);
    if (!out)
        return NULL;
    while (*s) {
        if (!strncmp(s, key, kl)) {
            memcpy(out + o, val, vl);
            o += vl;
            s += kl;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return out;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8 & 0xff);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

struct zentry {
    const char *name;
    const unsigned char *data;
    size_t len;
    uint32_t crc;
    uint32_t offset;
};

static int write_zip(FILE *f, struct zentry *e, size_t n)
{
    unsigned char h[46];
    uint32_t off = 0, cd_start, cd_len = 0;

    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);

        e[i].crc = crc32_of(e[i].data, e[i].len);
        e[i].offset = off;
        memset(h, 0, 30);
        put32(h, 0x04034b50);
        put16(h + 4, 20);
        put16(h + 12, DOS_DATE);
        put32(h + 14, e[i].crc);
        put32(h + 18, (uint32_t)e[i].len);
        put32(h + 22, (uint32_t)e[i].len);
        put16(h + 26, (unsigned)nl);
        if (fwrite(h, 1, 30, f) != 30 || fwrite(e[i].name, 1, nl, f) != nl ||
            fwrite(e[i].data, 1, e[i].len, f) != e[i].len)
            return -EIO;
        off += (uint32_t)(30 + nl + e[i].len);
    }
    cd_start = off;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);

        memset(h, 0, 46);
        put32(h, 0x02014b50);
        put16(h + 4, 3 << 8 | 20); /* made by: Unix, 2.0 */
        put16(h + 6, 20);
        put16(h + 14, DOS_DATE);
        put32(h + 16, e[i].crc);
        put32(h + 20, (uint32_t)e[i].len);
        put32(h + 24, (uint32_t)e[i].len);
        put16(h + 28, (unsigned)nl);
        put32(h + 38, 0100644u << 16); /* regular file, rw-r--r-- */
        put32(h + 42, e[i].offset);
        if (fwrite(h, 1, 46, f) != 46 || fwrite(e[i].name, 1, nl, f) != nl)
            return -EIO;
        cd_len += (uint32_t)(46 + nl);
    }
    memset(h, 0, 22);
    put32(h, 0x06054b50);
    put16(h + 8, (unsigned)n);
    put16(h + 10, (unsigned)n);
    put32(h + 12, cd_len);
    put32(h + 16, cd_start);
    return fwrite(h, 1, 22, f) == 22 ? 0 : -EIO;
}

static bool is_png(const unsigned char *p, size_t len, unsigned w, unsigned h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    if (len < 24 || memcmp(p, sig, 8) || memcmp(p + 12, "IHDR", 4))
        return false;
    return ((unsigned)p[16] << 24 | (unsigned)p[17] << 16 | (unsigned)p[18] << 8 | p[19]) == w &&
           ((unsigned)p[20] << 24 | (unsigned)p[21] << 16 | (unsigned)p[22] << 8 | p[23]) == h;
}

int ob_teams_package(const char *app_id, const char *version, const char *assets_dir,
                     const char *out_path, char *err, size_t errlen)
{
    unsigned char *tmpl = NULL, *color = NULL, *outline = NULL;
    size_t tl = 0, cl = 0, ol = 0;
    char *m1 = NULL, *manifest = NULL, *tmp = NULL;
    cJSON *check = NULL;
    struct zentry e[3];
    FILE *f = NULL;
    int rc;

    if (errlen)
        err[0] = '\0';
    rc = slurp(assets_dir, "manifest.json", &tmpl, &tl, err, errlen);
    if (!rc)
        rc = slurp(assets_dir, "color.png", &color, &cl, err, errlen);
    if (!rc)
        rc = slurp(assets_dir, "outline.png", &outline, &ol, err, errlen);
    if (rc)
        goto out;
    if (!is_png(color, cl, 192, 192) || !is_png(outline, ol, 32, 32)) {
        snprintf(err, errlen, "%s: color.png must be a 192x192 PNG and outline.png a 32x32 PNG",
                 assets_dir);
        rc = OB_EINVAL;
        goto out;
    }
    m1 = replace_all((const char *)tmpl, "{{APP_ID}}", app_id);
    manifest = m1 ? replace_all(m1, "{{VERSION}}", version) : NULL;
    if (!manifest) {
        rc = OB_ENOMEM;
        goto out;
    }
    check = cJSON_Parse(manifest);
    if (!cJSON_IsObject(check) || strstr(manifest, "{{")) {
        snprintf(err, errlen, "%s/manifest.json: %s", assets_dir,
                 check ? "a {{PLACEHOLDER}} is left after substitution" : "not valid JSON");
        rc = OB_EINVAL;
        goto out;
    }
    e[0] =
        (struct zentry){"manifest.json", (const unsigned char *)manifest, strlen(manifest), 0, 0};
    e[1] = (struct zentry){"color.png", color, cl, 0, 0};
    e[2] = (struct zentry){"outline.png", outline, ol, 0, 0};
    if (asprintf(&tmp, "%s.tmp", out_path) < 0) {
        tmp = NULL;
        rc = OB_ENOMEM;
        goto out;
    }
    f = fopen(tmp, "wb");
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = write_zip(f, e, 3);
    if (fclose(f) && !rc)
        rc = -EIO;
    f = NULL;
    if (!rc && rename(tmp, out_path))
        rc = -errno;
    if (rc) {
        unlink(tmp);
        if (!err[0])
            snprintf(err, errlen, "cannot write %s: %s", out_path, ob_strerror(rc));
    }
out:
    cJSON_Delete(check);
    free(tmp);
    free(m1);
    free(manifest);
    free(tmpl);
    free(color);
    free(outline);
    return rc;
}
