/* Audit export escaping: the input is up to 8 records, one per line, fields
 * separated by TAB (request, step, actor, platform, channel, action,
 * detail), appended to a fresh in-memory store and exported as CSV, JSON
 * lines and HTML. Oracles: the chain verifies; every JSON line parses;
 * the CSV has exactly one row per record plus the header (RFC 4180
 * quoting) and no field starts a spreadsheet formula; no "<fz" from the
 * input appears as markup in the HTML. */
#include "fuzz_common.h"
#include "opsbot/audit.h"
#include "opsbot/store.h"

#define MAX_RECORDS 8

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static char *export(struct ob_store *s, enum ob_audit_format fmt, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (!f)
        abort();
    if (ob_audit_export(s, f, fmt, 0, 0) != 0)
        abort();
    fclose(f);
    return text;
}

/* The field starting at s[i] must not start with what a spreadsheet runs
 * as a formula, quoted or not (docs/AUDIT.md, Exports). */
static void csv_field_start(const char *s, size_t i, size_t len)
{
    char c = s[i];

    if (c == '"') {
        if (i + 1 >= len)
            abort();
        c = s[i + 1];
        if (c == '"')
            return; /* empty, or a '"' first */
    } else if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
        return; /* an empty last field */
    }
    if (c && strchr("=+-@\t\r", c))
        abort();
}

/* RFC 4180 rows (CRLF outside quotes ends a row). */
static size_t csv_rows(const char *s, size_t len)
{
    size_t rows = 0;
    bool quoted = false, start = true;

    for (size_t i = 0; i < len; i++) {
        if (start)
            csv_field_start(s, i, len);
        start = false;
        if (s[i] == '"') {
            quoted = !quoted; /* "" inside a field toggles twice */
        } else if (!quoted && s[i] == ',') {
            start = true;
        } else if (!quoted && s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
            rows++;
            i++;
            start = true;
        }
    }
    if (quoted)
        abort();
    return rows;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size), *line, *next;
    struct ob_store *s = NULL;
    size_t n = 0, len;
    int64_t count = 0, bad = 0;
    char why[200], *text;

    if (ob_store_open(&s, ":memory:"))
        abort();
    for (line = in; line && n < MAX_RECORDS; line = next, n++) {
        struct ob_audit_entry e = {0};
        const char **f[] = {&e.request_id, &e.step,   &e.actor, &e.platform,
                            &e.channel,    &e.action, &e.detail};
        char *field = line;

        next = fuzz_cut(line, '\n');
        for (size_t k = 0; k < 7 && field; k++) {
            char *rest = fuzz_cut(field, '\t');

            *f[k] = field;
            field = rest;
        }
        if (ob_audit_append(s, &e, 1767225600000LL + (int64_t)n, NULL, NULL))
            abort();
    }
    if (ob_store_flush(s) || ob_audit_verify(s, &count, &bad, why, sizeof(why)) ||
        count != (int64_t)n)
        abort();
    text = export(s, OB_AUDIT_JSONL, &len);
    {
        size_t lines = 0;

        for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : NULL, lines++) {
            cJSON *o;

            nl = strchr(p, '\n');
            o = cJSON_ParseWithLength(p, nl ? (size_t)(nl - p) : strlen(p));
            if (!cJSON_IsObject(o))
                abort();
            cJSON_Delete(o);
        }
        if (lines != n)
            abort();
    }
    free(text);
    text = export(s, OB_AUDIT_CSV, &len);
    if (csv_rows(text, len) != n + 1)
        abort();
    free(text);
    text = export(s, OB_AUDIT_HTML, &len);
    if (strstr(text, "<fz"))
        abort();
    free(text);
    ob_store_close(s);
    free(in);
    return 0;
}
