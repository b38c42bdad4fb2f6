/* Small renderers for executor results: Unicode sparklines and values with
 * units. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "executors/net.h"

static const char *const bars[8] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};

const char *ob__sparkline(const double *v, size_t n, size_t width, char *buf, size_t len)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t cols, off = 0;

    if (!buf || !len)
        return buf;
    buf[0] = '\0';
    if (!v || !n || !width)
        return buf;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i])) {
            if (v[i] < lo)
                lo = v[i];
            if (v[i] > hi)
                hi = v[i];
        }
    }
    cols = n < width ? n : width;
    for (size_t c = 0; c < cols; c++) {
        /* Column c averages the points [a, b). */
        size_t a = c * n / cols, b = (c + 1) * n / cols;
        double sum = 0;
        size_t k = 0;
        const char *glyph = " ";

        if (b <= a)
            b = a + 1;
        for (size_t i = a; i < b && i < n; i++) {
            if (isfinite(v[i])) {
                sum += v[i];
                k++;
            }
        }
        if (k) {
            double avg = sum / (double)k;
            int level = hi > lo ? (int)((avg - lo) / (hi - lo) * 7.0 + 0.5) : 0;

            if (level < 0)
                level = 0;
            if (level > 7)
                level = 7;
            glyph = bars[level];
        }
        if (off + strlen(glyph) + 1 > len)
            break;
        memcpy(buf + off, glyph, strlen(glyph));
        off += strlen(glyph);
    }
    buf[off] = '\0';
    return buf;
}

static const char *scaled(double v, const char *const *units, size_t nunits, double base, char *buf,
                          size_t len)
{
    size_t u = 0;

    while (u + 1 < nunits && (v < 0 ? -v : v) >= base) {
        v /= base;
        u++;
    }
    snprintf(buf, len, "%.3g %s", v, units[u]);
    return buf;
}

const char *ob__fmt_value(double v, const char *unit, char *buf, size_t len)
{
    static const char *const bytes[] = {"B", "KiB", "MiB", "GiB", "TiB"};

    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return buf;
    }
    if (isinf(v)) {
        snprintf(buf, len, "%sInf", v > 0 ? "+" : "-");
        return buf;
    }
    if (!unit || !*unit) {
        snprintf(buf, len, "%.4g", v);
    } else if (!strcmp(unit, "s") || !strcmp(unit, "seconds")) {
        if (v != 0 && v > -1 && v < 1)
            snprintf(buf, len, "%.3g ms", v * 1000);
        else
            snprintf(buf, len, "%.3g s", v);
    } else if (!strcmp(unit, "ms")) {
        snprintf(buf, len, "%.3g ms", v);
    } else if (!strcmp(unit, "bytes")) {
        scaled(v, bytes, 5, 1024, buf, len);
    } else if (!strcmp(unit, "ratio")) {
        snprintf(buf, len, "%.3g%%", v * 100);
    } else if (!strcmp(unit, "percent") || !strcmp(unit, "%")) {
        snprintf(buf, len, "%.3g%%", v);
    } else {
        snprintf(buf, len, "%.4g %s", v, unit);
    }
    return buf;
}
