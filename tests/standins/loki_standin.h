/* A local Loki for tests: GET /loki/api/v1/query_range over loopback
 * (ob_http_server) with Loki's answer shape (resultType "streams", values
 * of [nanosecond-timestamp string, line], newest first for
 * direction=backward, at most `limit` entries overall) and Loki's plain-text
 * 400 "parse error at line 1, col N: …" for a query it cannot parse.
 *
 * It evaluates the LogQL subset opsbot's templates produce: a stream
 * selector {name OP "value", …} with = != =~ !~ (regexes fully anchored,
 * PCRE2) and line filters |= != |~ !~ with double-quoted (Go escapes) or
 * `raw` strings. Anything else is a parse error.
 */
#ifndef OPSBOT_TEST_LOKI_STANDIN_H
#define OPSBOT_TEST_LOKI_STANDIN_H

#include <stddef.h>
#include <stdint.h>

struct ob_lws;
struct ob_loki_standin;

/* tenant: the X-Scope-OrgID every request must carry (401 otherwise), or
 * NULL for none. */
int ob_loki_standin_new(struct ob_loki_standin **out, struct ob_lws *lws, const char *tenant);
void ob_loki_standin_free(struct ob_loki_standin *s);
int ob_loki_standin_port(const struct ob_loki_standin *s);
/* Adds a line to the stream with labels "app=checkout,env=prod,pod=p-1". */
void ob_loki_standin_push(struct ob_loki_standin *s, const char *labels, int64_t ts_ns,
                          const char *line);
/* Requests answered so far, and the decoded parameters of the last one. */
size_t ob_loki_standin_count(const struct ob_loki_standin *s);
const char *ob_loki_standin_last_query(const struct ob_loki_standin *s);
int ob_loki_standin_last_limit(const struct ob_loki_standin *s);
int64_t ob_loki_standin_last_range_ns(const struct ob_loki_standin *s);

#endif
