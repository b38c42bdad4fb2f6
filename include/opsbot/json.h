/* Small cJSON accessors shared by the platform parsers. */
#ifndef OPSBOT_JSON_H
#define OPSBOT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Member key of o when o is an object, else NULL. */
const cJSON *ob_json_member(const cJSON *o, const char *key);
/* String member key of o, or NULL (missing or not a string). */
const char *ob_json_str(const cJSON *o, const char *key);
/* Parses json[0..len) from a platform into *out, which must be a JSON
 * object of at most max bytes; what names the input in the one error line
 * written to err ("frame", "payload"). Returns 0, OB_EPARSE (empty, not an
 * object), OB_E2BIG or OB_EJSON; *out is the caller's to delete even on
 * OB_EPARSE for a non-object (NULL otherwise). */
int ob_json_parse_object(const char *json, size_t len, size_t max, const char *what, cJSON **out,
                         char *err, size_t errlen);
/* A JSON number that is a whole number within +-2^53 (exact in a double), as
 * an integer. False for anything else (not a number, a fraction, NaN, an
 * infinity or out of range); *out is left alone then. */
bool ob_json_int(const cJSON *n, int64_t *out);
/* As ob_json_int, or def when n is not such a number. */
int64_t ob_json_int_or(const cJSON *n, int64_t def);
/* A number as a config or a person would write it: whole numbers without a
 * fraction ("3", not "3.000000"), others as %g ("0.5", "1e+300", "nan").
 * Never converts a value an integer cannot hold. */
void ob_json_num_text(double v, char *buf, size_t len);
/* Ids, timestamps and names from a platform: printable ASCII without
 * blanks, quotes or backslashes, 1..len-1 bytes. */
bool ob_id_ok(const char *s, size_t len);
/* Copies s into dst[len] when ob_id_ok(s, len); false otherwise. */
bool ob_id_copy(char *dst, size_t len, const char *s);

#endif
