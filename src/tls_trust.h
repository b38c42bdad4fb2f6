/* Private to src/lws.c and src/http_conn.c: the system's trusted
 * certificates for a client SSL_CTX (src/tls_trust.c). */
#ifndef OPSBOT_TLS_TRUST_H
#define OPSBOT_TLS_TRUST_H

#include <openssl/ssl.h>

/* Sets ctx's trust store up from the system's hashed certificate directory
 * (X509_LOOKUP_hash_dir: one certificate read when a chain needs it)
 * instead of OpenSSL's default paths. SSL_CERT_FILE and SSL_CERT_DIR are
 * honoured as OpenSSL does, except that an SSL_CERT_FILE naming the system
 * bundle itself adds nothing to the system's hashed directory and is not
 * parsed. Without a hashed directory the default paths are used. Failures
 * are logged (peers will then not verify). */
void ob__tls_trust_os(SSL_CTX *ctx);

#endif
