/* Private to src/http.c (and its fuzz target): the URLs the HTTP client
 * accepts. Some come from outside (a Teams activity's serviceUrl, a
 * provider's answer), and the host goes into the Host header and the path
 * into the request line: nothing that could split either gets through. */
#ifndef OPSBOT_HTTP_URL_H
#define OPSBOT_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>

#define OB__URL_MAX_HOST 256

struct ob__url {
    bool tls;
    char host[OB__URL_MAX_HOST];        /* without brackets */
    char hosthdr[OB__URL_MAX_HOST + 8]; /* for Host: "name", "name:port", "[v6]:port" */
    int port;
    const char *path; /* into the URL: "/...", "?..." or "" */
    size_t path_len;  /* up to a '#' */
};

/* http://host[:port][/path][?query][#fragment] (or https), host a name, an
 * IPv4 address or a [bracketed] IPv6 one, port 1-65535 in digits. No
 * credentials, no byte <= 0x20 or 0x7f anywhere. Returns 0 or OB_EINVAL. */
int ob__url_parse(const char *u, struct ob__url *out);

#endif
