/* Constructors of the adapters opsbot ships. */
#ifndef OPSBOT_ADAPTERS_H
#define OPSBOT_ADAPTERS_H

#include <stdio.h>

#include <uv.h>

#include "opsbot/event.h"

/* The console adapter: reads lines from in_fd (a terminal, a pipe or a
 * file) and prints every bot message to out as "[m7] text". Lines are
 * messages from console:USER in channel `channel`; lines starting with '/'
 * are console commands (/as, /react, /unreact, /approve, /deny, /in, /wait,
 * /redeliver, /help, /quit). At end of input (or /quit) it waits for the
 * work in flight and then shuts the bot down. */
int ob_console_new(struct ob_adapter **out, uv_loop_t *loop, const char *user, const char *channel,
                   int in_fd, FILE *out_file);

#endif
