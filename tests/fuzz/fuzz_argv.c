/* The argv template renderer with fuzzed parameters: the first byte picks
 * an action of the shipped catalog, line 1 (after it) is the argv template
 * as JSON (or, when it is not a JSON array, the demo's template for that
 * action), each further line is one NAME=VALUE parameter, taken as is,
 * unvalidated. ob_argv_render must never split or join elements, and every
 * element it returns is a string of at most the element cap. */
#include "fuzz_common.h"
#include "opsbot/err.h"
#include "opsbot/executor.h"

static struct fuzz_shipped S;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    S = fuzz_load_shipped();
    return 0;
}

/* Elements that hold no placeholder, or at least one that is set, survive. */
static size_t expected_elements(const cJSON *tmpl, const struct ob_proposal *p)
{
    const cJSON *el;
    size_t n = 0;

    cJSON_ArrayForEach(el, tmpl)
    {
        const char *s = el->valuestring;
        size_t ph = 0, set = 0;

        for (size_t i = 0; s[i]; i++) {
            if ((s[i] == '{' && s[i + 1] == '{') || (s[i] == '}' && s[i + 1] == '}')) {
                i++;
                continue;
            }
            if (s[i] == '{') {
                size_t j = i + 1;
                char name[64];

                while (s[j] && s[j] != '}')
                    j++;
                snprintf(name, sizeof(name), "%.*s", (int)(j - i - 1), s + i + 1);
                ph++;
                if (ob_proposal_get(p, name))
                    set++;
                i = j;
            }
        }
        n += !ph || set;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ob_proposal prop = {0};
    char *in, *line, *next;
    cJSON *tmpl;
    char **argv = NULL;
    char buf[2048];
    int rc;

    if (size < 1)
        return 0;
    prop.action = &S.cat->actions[data[0] % S.cat->n];
    prop.source = "grammar";
    in = fuzz_cstr(data + 1, size - 1);
    next = fuzz_cut(in, '\n');
    tmpl = cJSON_Parse(in);
    if (!cJSON_IsArray(tmpl)) {
        cJSON_Delete(tmpl);
        tmpl = cJSON_Parse("[\"./fleet.sh\", \"restart\", \"{service}\", \"--env={env}\", "
                           "\"{revision}\", \"{{literal}}\", \"{since}-{filter}\"]");
    }
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
    rc = ob_argv_render(NULL, tmpl, &prop, &argv);
    if (rc == 0) {
        size_t n = 0;

        if (!argv || !argv[0] || !*argv[0])
            abort();
        while (argv[n])
            n++;
        if (n != expected_elements(tmpl, &prop))
            abort();
        ob_argv_format(argv, buf, sizeof(buf));
    } else if (argv || (rc != OB_EINVAL && rc != OB_ENOMEM)) {
        abort();
    }
    ob_argv_free(argv);
    cJSON_Delete(tmpl);
    free(in);
    return 0;
}
