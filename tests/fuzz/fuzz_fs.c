/* A fence around the file system for the fuzz targets: configuration
 * documents may include files by glob, and a fuzzed `include:` could name
 * anything (/proc/kmsg blocks a reader, a recursive pattern walks the disk). This
 * definition of glob64 (the name <glob.h> gives glob with 64-bit offsets)
 * takes precedence over libc's for the code linked into the target: it
 * passes patterns under the sandbox directory or the shipped intents on
 * to libc and answers GLOB_NOMATCH for everything else. */
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

static char sandbox[64];

typedef int (*glob64_fn)(const char *, int, int (*)(const char *, int), glob64_t *);

static void put(const char *dir, const char *name, const char *text)
{
    char path[160];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

const char *fuzz_sandbox(void)
{
    if (sandbox[0])
        return sandbox;
    snprintf(sandbox, sizeof(sandbox), "/tmp/opsbot-fuzz-XXXXXX");
    if (!mkdtemp(sandbox))
        abort();
    /* A few files for include globs and .env to find. */
    put(sandbox, ".env", "FUZZ_TOKEN=xoxb-fuzz\nFUZZ_ENV=prod\n");
    put(sandbox, "a.yaml",
        "- name: ping\n  description: ping a service\n  risk: read\n  params:\n"
        "    service: {type: string, pattern: '^[a-z]+$', required: true}\n"
        "  rules: ['ping (?<service>[a-z]+)']\n");
    put(sandbox, "p.yaml",
        "groups: {ops: [console:dev]}\nrules: [{name: r, group: ops, "
        "action: ping, effect: allow}]\n");
    return sandbox;
}

static int allowed(const char *pattern)
{
    char intents[4200];
    size_t n = strlen(sandbox);

    if (strstr(pattern, ".."))
        return 0;
    if (n && !strncmp(pattern, sandbox, n) && pattern[n] == '/')
        return 1;
    snprintf(intents, sizeof(intents), "%s/intents/", fuzz_source_root());
    return !strncmp(pattern, intents, strlen(intents));
}

int glob64(const char *pattern, int flags, int (*errfunc)(const char *, int), glob64_t *pglob)
{
    static glob64_fn real;

    if (!allowed(pattern))
        return GLOB_NOMATCH;
    if (!real)
        real = (glob64_fn)dlsym(RTLD_NEXT, "glob64");
    if (!real)
        abort();
    return real(pattern, flags, errfunc, pglob);
}
