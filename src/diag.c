#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/config.h"

void ob_diag_init(struct ob_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void ob_diag_release(struct ob_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->lines[i]);
    free(d->lines);
    ob_diag_init(d);
}

void ob_diag_addf(struct ob_diag *d, const char *fmt, ...)
{
    va_list ap;
    char *line = NULL;
    int len;

    if (!d)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        char **l = realloc(d->lines, cap * sizeof(*l));

        if (!l)
            return;
        d->lines = l;
        d->cap = cap;
    }
    va_start(ap, fmt);
    len = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (len < 0)
        line = NULL;
    d->lines[d->n++] = line; /* NULL line on OOM still counts */
}

void ob_diag_print(const struct ob_diag *d, void *file)
{
    FILE *f = file ? file : stderr;

    for (size_t i = 0; i < d->n; i++)
        fprintf(f, "%s\n", d->lines[i] ? d->lines[i] : "(error message lost: out of memory)");
}
