/* The system's trust store for a client SSL_CTX, shared by the lws
 * client vhosts (src/lws.c) and the HTTP client's own TLS (src/http_conn.c).
 *
 * OpenSSL's default verify paths parse the whole system bundle (~140
 * certificates, ~0.9 MB of heap kept for the process's life). The hashed
 * directory gives the same trust, certificate by certificate on demand.
 * See docs/TRANSPORT.md, "Trust store". */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "opsbot/log.h"
#include "tls_trust.h"

/* True when dir holds OpenSSL's hashed links ("5ad8a5d6.0"): certificates
 * are then looked up there one at a time, when a chain needs them. */
static bool hashed_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;

    if (!d)
        return false;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;

        found = strlen(n) >= 10 && strspn(n, "0123456789abcdef") == 8 && n[8] == '.' &&
                n[9] >= '0' && n[9] <= '9';
    }
    closedir(d);
    return found;
}

/* The same file, links resolved (false when either cannot be resolved). */
static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];

    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* The client vhost's trust store, set up instead of OpenSSL's default
 * paths: those parse the whole system bundle (~140 certificates, ~0.9 MB
 * of heap kept for the process's life) when the vhost is created. The
 * hashed directory gives the same trust, certificate by certificate on
 * demand. SSL_CERT_FILE and SSL_CERT_DIR are honoured as OpenSSL does,
 * except that an SSL_CERT_FILE naming the system bundle itself adds
 * nothing to the system's hashed directory (update-ca-certificates writes
 * both) and is not parsed. Without a hashed directory the default paths
 * are used as before. */
void ob__tls_trust_os(SSL_CTX *ctx)
{
    const char *file = getenv(X509_get_default_cert_file_env());
    const char *dir = getenv(X509_get_default_cert_dir_env());
    bool hashed, ok = true;

    if (!dir || !*dir)
        dir = X509_get_default_cert_dir();
    hashed = hashed_dir(dir);
    if (file && (!*file || (hashed && same_file(file, X509_get_default_cert_file()) &&
                            same_file(dir, X509_get_default_cert_dir()))))
        file = NULL;
    if (file)
        ok = SSL_CTX_load_verify_locations(ctx, file, NULL) == 1;
    if (ok && hashed)
        ok = SSL_CTX_load_verify_locations(ctx, NULL, dir) == 1;
    else if (ok && !file)
        ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
    if (!ok)
        ob_warn("tls",
                "cannot load the system's trusted certificates (%s): TLS peers will "
                "not verify",
                file ? file : dir);
}
