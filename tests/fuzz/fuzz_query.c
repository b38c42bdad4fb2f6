/* The PromQL / LogQL builders (src/executors/promql.c): byte 0 picks the
 * dialect and an action of the shipped catalog, line 1 is the query
 * template, further lines NAME=VALUE parameters (unvalidated). A template
 * that passes ob__query_check renders with any values without changing the
 * query's structure: outside the template's own text, a value can add no
 * unescaped double quote (it cannot end the string it sits in). */
#include "executors/net.h"
#include "fuzz_common.h"

static struct fuzz_shipped S;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    S = fuzz_load_shipped();
    return 0;
}

/* Double quotes not escaped by a backslash. */
static size_t bare_quotes(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        if (*s == '\\' && s[1])
            s++;
        else if (*s == '"')
            n++;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ob_proposal prop = {0};
    enum ob__qdialect dl;
    char *tmpl, *line, *next, *out;
    char why[512];

    if (size < 1)
        return 0;
    dl = data[0] & 1 ? OB__LOGQL : OB__PROMQL;
    prop.action = &S.cat->actions[(data[0] >> 1) % S.cat->n];
    prop.source = "grammar";
    tmpl = fuzz_cstr(data + 1, size - 1);
    next = fuzz_cut(tmpl, '\n');
    for (line = next; line && prop.nparams < OB_MAX_PARAMS; line = next) {
        char *value;

        next = fuzz_cut(line, '\n');
        value = fuzz_cut(line, '=');
        if (!value)
            continue;
        snprintf(prop.params[prop.nparams].name, sizeof(prop.params[0].name), "%s", line);
        snprintf(prop.params[prop.nparams].value, sizeof(prop.params[0].value), "%s", value);
        prop.nparams++;
    }
    if (ob__query_check(dl, tmpl, prop.action, why, sizeof(why)) == 0) {
        out = ob__query_render(dl, tmpl, &prop, why, sizeof(why));
        if (out && bare_quotes(out) != bare_quotes(tmpl))
            abort();
        free(out);
    }
    /* The placement check alone, and rendering without the check. */
    ob__query_check(dl, tmpl, NULL, why, sizeof(why));
    free(ob__query_render(dl, tmpl, &prop, why, sizeof(why)));
    free(tmpl);
    return 0;
}
