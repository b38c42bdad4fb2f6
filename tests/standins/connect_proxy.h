/* A tiny HTTP CONNECT proxy for tests, on 127.0.0.1 (libuv TCP): answers
 * "CONNECT host:port" with 200 and then relays bytes both ways. With a
 * forward port it is a plain TCP relay to 127.0.0.1:forward_port instead
 * (no CONNECT), which lets a test count the connections a client opens. */
#ifndef OPSBOT_CONNECT_PROXY_H
#define OPSBOT_CONNECT_PROXY_H

#include <uv.h>

struct connect_proxy;

/* forward_port 0: CONNECT proxy; otherwise a relay to that port. */
int connect_proxy_new(struct connect_proxy **out, uv_loop_t *loop, int forward_port);
int connect_proxy_port(const struct connect_proxy *p);
unsigned connect_proxy_accepted(const struct connect_proxy *p); /* TCP connections */
unsigned connect_proxy_tunnels(const struct connect_proxy *p);  /* CONNECTs answered 200 */
/* "host:port" of the last CONNECT, and its Proxy-Authorization value ("" if none). */
const char *connect_proxy_last_target(const struct connect_proxy *p);
const char *connect_proxy_last_auth(const struct connect_proxy *p);
/* Closes everything; run the loop afterwards. */
void connect_proxy_free(struct connect_proxy *p);

#endif
