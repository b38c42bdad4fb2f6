/* Ports for listeners that tests make other processes open. */
#ifndef OB_TEST_PORTS_H
#define OB_TEST_PORTS_H

/* A loopback TCP port that is free now, for a listener someone else binds
 * later (the bot, Prometheus): they cannot report back a port-0 bind. It
 * is taken below Linux's ephemeral range (32768-60999), which the kernel
 * hands out for every port-0 bind and outgoing connection of the tests
 * running in parallel: such a port could be taken again between this check
 * and the real bind (EADDRINUSE seen under `meson test -j`). -1 when none
 * of 200 random tries is free. */
int standin_free_port(void);

#endif
