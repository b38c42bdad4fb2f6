/* Configuration: YAML files loaded into cJSON trees, with the file and line of
 * every node remembered so that errors can name file:line:key.
 *
 * The main file may include other YAML files through `include:` globs
 * (under `actions:` and `policies:`); `${VAR}` and `${VAR:-default}` in scalar
 * values expand from the environment, then from a `.env` file next to the
 * main config. Secrets therefore never need to be written in the YAML.
 */
#ifndef OPSBOT_CONFIG_H
#define OPSBOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- diagnostics ------------------------------------------------------ */

/* A list of error lines, each "file:line: key: message". Owned by the caller;
 * ob_diag_release() frees the lines. */
struct ob_diag {
    char **lines;
    size_t n;
    size_t cap;
};

void ob_diag_init(struct ob_diag *d);
void ob_diag_release(struct ob_diag *d);
/* Appends one formatted line (no trailing newline). Never fails visibly: on
 * OOM the line is dropped and a counter is kept so that n > 0 still holds. */
void ob_diag_addf(struct ob_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes all lines to stderr (or f), one per line. */
void ob_diag_print(const struct ob_diag *d, void *file);

/* ---- the loaded configuration ---------------------------------------- */

struct ob_config;

/* One loaded YAML document. */
struct ob_config_doc {
    char *path; /* as given or resolved from the include glob */
    cJSON *root;
};

/* Loads the main file and every file named by include globs. Returns 0, or
 * OB_ECONFIG with the reasons in d (file:line: key: message). Values keep
 * their YAML scalar type: plain scalars that look like integers, floats or
 * booleans become cJSON numbers / booleans, quoted scalars stay strings.
 * Included documents are available through ob_config_includes(). */
int ob_config_load(struct ob_config **out, const char *path, struct ob_diag *d);
/* Same, from a string; path is used in messages and as the base directory
 * for includes and `.env` (may be a fictitious "test.yaml"). */
int ob_config_load_string(struct ob_config **out, const char *yaml, const char *path,
                          struct ob_diag *d);
void ob_config_free(struct ob_config *cfg);

/* Root mapping of the main file (never NULL after a successful load). */
const cJSON *ob_config_root(const struct ob_config *cfg);
/* Directory of the main file, used to resolve relative paths. */
const char *ob_config_dir(const struct ob_config *cfg);
/* Documents included under section ("actions" or "policies"), in glob order. */
const struct ob_config_doc *ob_config_includes(const struct ob_config *cfg, const char *section,
                                               size_t *n);

/* Where a node came from: "file:line" (static buffer per call site is not
 * used: writes into buf). Works for nodes of the main file and of included
 * documents. For nodes the config does not know (e.g. built in tests with
 * cJSON_Parse), writes "<input>". Returns buf. */
const char *ob_config_where(const struct ob_config *cfg, const cJSON *node, char *buf, size_t len);

/* Resolves a path relative to the config directory (absolute paths are kept).
 * Returns a malloc'd string or NULL. */
char *ob_config_path(const struct ob_config *cfg, const char *rel);

/* ---- typed access with schema checks ---------------------------------
 *
 * Every helper reports problems into d as "file:line: key: message" and
 * returns a negative code; cfg may be NULL (locations then read "<input>").
 */

/* Reports every key of obj not in allowed (NULL-terminated). Returns the
 * number of unknown keys. `what` names the section ("bot", "action 'x'"). */
int ob_cfg_check_keys(const struct ob_config *cfg, const cJSON *obj, const char *const allowed[],
                      const char *what, struct ob_diag *d);
/* String member; missing and !required: *out = def, returns 0. */
int ob_cfg_string(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
                  const char *def, const char **out, struct ob_diag *d);
int ob_cfg_int(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
               int64_t def, int64_t min, int64_t max, int64_t *out, struct ob_diag *d);
int ob_cfg_bool(const struct ob_config *cfg, const cJSON *obj, const char *key, bool def, bool *out,
                struct ob_diag *d);
/* Duration member ("30s", "5m", "1h30m", "250ms", plain integer = seconds)
 * into milliseconds. */
int ob_cfg_duration(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
                    int64_t def_ms, int64_t *out_ms, struct ob_diag *d);
/* Member that must be a string or a list of strings; *out is the node itself
 * (a string or an array), or NULL when missing. */
int ob_cfg_strlist(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
                   const cJSON **out, struct ob_diag *d);

/* Parses a duration string ("90s", "5m", "1h", "1h30m", "250ms", "2d",
 * digits = seconds) into milliseconds. Returns 0 or OB_EINVAL. */
int ob_duration_parse(const char *s, int64_t *out_ms);
/* Formats milliseconds as "1h30m", "45s", "250ms". Returns buf. */
const char *ob_duration_format(int64_t ms, char *buf, size_t len);

#endif
