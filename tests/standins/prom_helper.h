/* The real Prometheus for tests (Debian's /usr/bin/prometheus and
 * /usr/bin/promtool): series the test writes as OpenMetrics text (with
 * timestamps, so "a day earlier" exists) are turned into TSDB blocks with
 * `promtool tsdb create-blocks-from openmetrics`, then Prometheus serves
 * them on a free loopback port. It is killed at exit, also when the test
 * dies by a signal (SIGTERM from meson's timeout, an abort). */
#ifndef OPSBOT_TEST_PROM_HELPER_H
#define OPSBOT_TEST_PROM_HELPER_H

#include <stdbool.h>

#include <uv.h>

struct ob_http;

struct ob_prom {
    uv_process_t proc;
    bool running, exited;
    int port;
    char dir[400];
};

/* True when both binaries are installed. */
bool ob_prom_available(void);
/* Writes openmetrics (must end with "# EOF\n") into dir/data.om, builds the
 * blocks into dir/data, starts Prometheus and waits (at most ~20 s) until
 * ready_query (an instant PromQL) returns a sample. Returns NULL or a
 * reason (see dir/prometheus.log). */
const char *ob_prom_start(struct ob_prom *p, uv_loop_t *loop, struct ob_http *http, const char *dir,
                          const char *openmetrics, const char *ready_query);
/* SIGTERM, then SIGKILL after 5 s; runs the loop until it has exited. */
void ob_prom_stop(struct ob_prom *p, uv_loop_t *loop);

#endif
