/* TLS (OpenSSL) as the security stage of each TCP attempt
 * (draft-ietf-happy-happyeyeballs-v3-04 §6.1): an attempt wins at the end
 * of its TLS handshake, not when its TCP connects.
 *
 *   tls_stage                 a TLS 1.3 server of its own on 127.0.0.1
 *                             (self-signed P-256 certificate), raced to
 *   tls_stage HOST [PORT]     a real server (certificate not checked here)
 *
 * Prints the winner, the ALPN id the server selected (h2 or http/1.1
 * offered), and for each attempt when TCP connected and when TLS was done.
 * See docs/guide/tls-stage.md. */
#include <taps_racing.h>

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static SSL_CTX *client_ctx;

/* Go on with one attempt's handshake; report when it ends. The SSL * is
 * kept with the attempt by the fd: SSL_get_ex_data would do as well. */
static SSL *sessions[1024];

static void drive(taps_stage_attempt *a, SSL *ssl) {
  int rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    const unsigned char *p = NULL;
    unsigned int len = 0;
    char id[256] = {0};
    SSL_get0_alpn_selected(ssl, &p, &len);
    memcpy(id, p, len);
    taps_stage_attempt_ready(a, len ? id : NULL);
    return;
  }
  int err = SSL_get_error(ssl, rc);
  if (err == SSL_ERROR_WANT_READ) {
    taps_stage_attempt_want_read(a);
  } else if (err == SSL_ERROR_WANT_WRITE) {
    taps_stage_attempt_want_write(a);
  } else {
    sessions[taps_stage_attempt_get_fd(a)] = NULL;
    SSL_free(ssl);
    taps_stage_attempt_failed(a, EPROTO);
  }
}

static int tls_start(taps_stage_attempt *a, void *ud) {
  (void)ud;
  int fd = taps_stage_attempt_get_fd(a);
  if (fd >= 1024) return EMFILE;
  SSL *ssl = SSL_new(client_ctx);
  SSL_set_fd(ssl, fd); /* the fd stays the library's: SSL_free does not close it */
  SSL_set_connect_state(ssl);
  size_t n = 0;
  const uint8_t *wire = taps_stage_attempt_get_alpn_wire(a, &n);
  if (wire != NULL) SSL_set_alpn_protos(ssl, wire, (unsigned int)n);
  const char *host = taps_stage_attempt_get_host_name(a);
  if (host != NULL) SSL_set_tlsext_host_name(ssl, host);
  sessions[fd] = ssl;
  drive(a, ssl);
  return 0;
}

static void tls_io(taps_stage_attempt *a, bool readable, bool writable, void *ud) {
  (void)readable, (void)writable, (void)ud;
  drive(a, sessions[taps_stage_attempt_get_fd(a)]);
}

static void tls_cancel(taps_stage_attempt *a, void *ud) {
  (void)ud;
  int fd = taps_stage_attempt_get_fd(a);
  SSL_free(sessions[fd]);
  sessions[fd] = NULL;
}

static int on_ready(taps_connection *c, void *ud) {
  (void)ud;
  const char *alpn = taps_connection_get_alpn(c);
  printf("ready: fd %d, ALPN %s\n", taps_connection_get_fd(c), alpn ? alpn : "(none)");
  for (size_t i = 0; i < taps_connection_attempt_count(c); i++) {
    taps_attempt_info info;
    uint64_t connected = 0;
    taps_connection_get_attempt(c, i, &info);
    if (taps_connection_get_attempt_connected_us(c, i, &connected) == TAPS_OK)
      printf("  attempt %zu: TCP connected at %llu us, TLS done at %llu us\n", i, (unsigned long long)connected,
             (unsigned long long)info.ended_us);
  }
  return 0;
}

static int on_error(taps_connection *c, void *ud) {
  (void)ud;
  printf("failed: %s\n", taps_strerror(taps_connection_get_error(c)));
  return 0;
}

/* The loopback server: one TLS 1.3 connection, ALPN h2. */
static int select_h2(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                     unsigned int inlen, void *arg) {
  (void)s, (void)arg;
  unsigned char *sel = NULL;
  static const unsigned char h2[] = {2, 'h', '2'};
  if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2, in, inlen) != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static void *serve_one(void *arg) {
  int listener = *(int *)arg;
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_sign(cert, key, EVP_sha256());
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_use_certificate(ctx, cert);
  SSL_CTX_use_PrivateKey(ctx, key);
  SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
  int fd = accept(listener, NULL, NULL);
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    char buf[64];
    while (SSL_read(ssl, buf, sizeof buf) > 0) {
    }
  }
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  X509_free(cert);
  EVP_PKEY_free(key);
  return NULL;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); /* a write to a peer that went is EPIPE, not a signal */
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  uint16_t port = argc > 2 ? (uint16_t)atoi(argv[2]) : 443;
  pthread_t server;
  int listener = -1;
  if (argc == 1) {
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(listener, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(listener, 4) != 0) return 1;
    getsockname(listener, (struct sockaddr *)&sin, &len);
    port = ntohs(sin.sin_port);
    pthread_create(&server, NULL, serve_one, &listener);
  }
  client_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);

  taps_event_loop *loop = taps_event_loop_new();
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  taps_remote_endpoint_with_hostname(ep, host);
  taps_remote_endpoint_with_port(ep, port);
  taps_racing_options opts = taps_racing_options_default();
  opts.total_timeout_ms = 10000;
  taps_preconnection *pre = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &opts);
  const char *alpn[] = {"h2", "http/1.1"};
  taps_preconnection_set_alpn(pre, alpn, 2);
  taps_stage_callbacks stage = TAPS_STAGE_CALLBACKS_INIT;
  stage.start = tls_start;
  stage.io = tls_io;
  stage.cancel = tls_cancel;
  taps_preconnection_set_security_stage(pre, &stage, NULL);
  taps_connection_callbacks cb = TAPS_CONNECTION_CALLBACKS_INIT;
  cb.ready = on_ready;
  cb.establishment_error = on_error;
  taps_connection *conn = NULL;
  if (taps_preconnection_initiate_with_racing(pre, cb, &conn) != TAPS_OK) return 1;
  taps_event_loop_run(loop);
  int ok = taps_connection_get_alpn(conn) != NULL;

  int fd = taps_connection_get_fd(conn);
  if (fd >= 0 && fd < 1024) SSL_free(sessions[fd]); /* the winner's session was ours */
  taps_connection_free(conn);
  taps_preconnection_free(pre);
  taps_remote_endpoint_free(ep);
  taps_event_loop_free(loop);
  SSL_CTX_free(client_ctx);
  if (argc == 1) {
    pthread_join(server, NULL);
    close(listener);
  }
  return ok || argc > 1 ? 0 : 1;
}
