/* Chat platforms: each adapter registers a row in src/platforms.c with a
 * check function (validates its `platforms.NAME:` config section at load
 * time, reporting file:line: key errors) and a constructor. The core creates
 * one adapter per configured platform at start and attaches it to the bot.
 */
#ifndef OPSBOT_PLATFORM_H
#define OPSBOT_PLATFORM_H

#include <uv.h>

#include "opsbot/config.h"
#include "opsbot/event.h"

struct ob_lws;
struct ob_http;
struct ob_redact;

/* Shared transport the core hands to network adapters. */
struct ob_platform_env {
    uv_loop_t *loop;
    struct ob_lws *lws;   /* libwebsockets context on the loop */
    struct ob_http *http; /* HTTP client (lws client HTTP) on the loop */
    const struct ob_redact *red;
    const struct ob_config *cfg;
};

struct ob_platform {
    const char *name; /* the key under `platforms:` */
    /* Validates the section; problems into d. Returns 0 or OB_ECONFIG. */
    int (*check)(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d);
    /* Creates the adapter (not yet started). section was checked before. */
    int (*create)(struct ob_adapter **out, const struct ob_platform_env *env, const cJSON *section);
    /* Whether the platform needs the lws context / the HTTP client. */
    bool needs_lws;
    bool needs_http;
};

/* The registry, NULL-terminated; the console is not in it (it is started by
 * `opsbot console`, never by `opsbot run`). */
extern const struct ob_platform *const ob_platforms[];
const struct ob_platform *ob_platform_find(const char *name);

#endif
