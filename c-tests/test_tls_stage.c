/* A real TLS 1.3 handshake (OpenSSL) as the security stage of each TCP
 * attempt (draft-ietf-happy-happyeyeballs-v3-04 §6.1): the attempt wins at
 * the end of its handshake, not at TCP connect.
 *
 * Servers: threads of this test with OpenSSL and a self-signed P-256
 * certificate made at start, each serving one connection on 127.0.0.1.
 * The client offers ALPN h2 and http/1.1; the "fast" server selects h2 and
 * handshakes at once, the "slow" one selects http/1.1 after a delay (its
 * TCP connects first), the "garbage" one answers the ClientHello with
 * plain text (the handshake fails).
 *
 * Checks: the winner's ALPN (taps_connection_get_alpn), that the
 * connection's ready follows the stage's finished handshake and the
 * session works on the connection's fd (ping / pong), every loser's stage
 * cancelled once or failed, the race report's TCP and handshake times,
 * and no fd left open.
 */
#include "test_util.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>

/* ---- certificate and server ------------------------------------------ */

static EVP_PKEY *key;
static X509 *cert;

static void make_cert(void) {
  key = EVP_EC_gen("P-256");
  CHECK(key != NULL);
  cert = X509_new();
  CHECK(cert != NULL);
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(cert, name);
  CHECK(X509_sign(cert, key, EVP_sha256()) > 0);
}

typedef enum { SERVE_FAST, SERVE_SLOW, SERVE_GARBAGE } ServeMode;

typedef struct Server {
  int listener;
  uint16_t port;
  ServeMode mode;
  pthread_t thread;
  int handshakes; /* completed on the server's side */
} Server;

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  const char *want = (const char *)arg;
  size_t wlen = strlen(want);
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (len == wlen && i + 1 + len <= inlen && memcmp(in + i + 1, want, len) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)len;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* One connection: accept, (wait,) handshake, answer "ping" with "pong",
 * wait for the client to close. */
static void *serve(void *arg) {
  Server *s = (Server *)arg;
  int fd = accept(s->listener, NULL, NULL);
  if (fd < 0) return NULL;
  if (s->mode == SERVE_GARBAGE) {
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    (void)n;
    const char reply[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
    n = write(fd, reply, sizeof reply - 1);
    (void)n;
    close(fd);
    return NULL;
  }
  if (s->mode == SERVE_SLOW) usleep(1000 * 1000);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  CHECK(ctx != NULL);
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  CHECK(SSL_CTX_use_certificate(ctx, cert) == 1);
  CHECK(SSL_CTX_use_PrivateKey(ctx, key) == 1);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, (void *)(s->mode == SERVE_FAST ? "h2" : "http/1.1"));
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    s->handshakes++;
    char buf[16];
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n == 4 && memcmp(buf, "ping", 4) == 0) SSL_write(ssl, "pong", 4);
    while (SSL_read(ssl, buf, sizeof buf) > 0) {
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return NULL;
}

static void server_start(Server *s, ServeMode mode) {
  memset(s, 0, sizeof *s);
  s->mode = mode;
  s->listener = test_listen(AF_INET, &s->port);
  CHECK(s->listener >= 0);
  /* test_listen's listener is non-blocking: the server thread blocks. */
  int flags = fcntl(s->listener, F_GETFL);
  CHECK(fcntl(s->listener, F_SETFL, flags & ~O_NONBLOCK) == 0);
  CHECK(pthread_create(&s->thread, NULL, serve, s) == 0);
}

/* The test's side closed its connections: the server thread ends. A server
 * no attempt reached is woken by a connection of our own. */
static void server_join(Server *s) {
  int poke = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(s->port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(poke, (struct sockaddr *)&sin, sizeof sin);
  (void)rc;
  close(poke);
  pthread_join(s->thread, NULL);
  close(s->listener);
}

/* ---- the stage: OpenSSL on the library's connected socket ------------- */

#define MAX_SESSIONS 8

typedef struct Session {
  taps_stage_attempt *attempt; /* NULL once reported or cancelled */
  SSL *ssl;
  int fd;
  int index;
  int cancelled;
  int failed;
  int handshake_done;
  uint64_t done_us;
} Session;

typedef struct Stage {
  SSL_CTX *ctx;
  Session sessions[MAX_SESSIONS];
  int n;
  int starts;
  taps_preconnection *free_in_start; /* freed by the first start */
} Stage;

static Session *session_of(Stage *st, taps_stage_attempt *a) {
  for (int i = 0; i < st->n; i++)
    if (st->sessions[i].attempt == a) return &st->sessions[i];
  return NULL;
}

/* Go on with the handshake; report when it ends. */
static void drive(Session *s) {
  int rc = SSL_do_handshake(s->ssl);
  if (rc == 1) {
    const unsigned char *alpn = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(s->ssl, &alpn, &len);
    char id[256] = {0};
    memcpy(id, alpn, len);
    s->handshake_done = 1;
    s->done_us = test_now_us();
    taps_stage_attempt *a = s->attempt;
    /* Kept until the race settles: cancel may still come for it. */
    CHECK_CODE(taps_stage_attempt_ready(a, len ? id : NULL), TAPS_OK);
    return;
  }
  switch (SSL_get_error(s->ssl, rc)) {
  case SSL_ERROR_WANT_READ:
    CHECK_CODE(taps_stage_attempt_want_read(s->attempt), TAPS_OK);
    break;
  case SSL_ERROR_WANT_WRITE:
    CHECK_CODE(taps_stage_attempt_want_write(s->attempt), TAPS_OK);
    break;
  default:
    ERR_clear_error();
    s->failed = 1;
    SSL_free(s->ssl);
    s->ssl = NULL;
    taps_stage_attempt *a = s->attempt;
    s->attempt = NULL;
    CHECK_CODE(taps_stage_attempt_failed(a, EPROTO), TAPS_OK);
  }
}

static int stage_start(taps_stage_attempt *a, void *ud) {
  Stage *st = (Stage *)ud;
  st->starts++;
  /* Freeing the preconnection inside a stage callback is safe: the race
   * keeps what it needs. */
  taps_preconnection_free(st->free_in_start);
  st->free_in_start = NULL;
  CHECK(st->n < MAX_SESSIONS);
  Session *s = &st->sessions[st->n++];
  memset(s, 0, sizeof *s);
  s->attempt = a;
  s->fd = taps_stage_attempt_get_fd(a);
  s->index = taps_stage_attempt_index(a);
  s->ssl = SSL_new(st->ctx);
  CHECK(s->ssl != NULL);
  CHECK(SSL_set_fd(s->ssl, s->fd) == 1); /* a BIO_NOCLOSE socket BIO: the fd stays the library's */
  SSL_set_connect_state(s->ssl);
  size_t wire_len = 0;
  const uint8_t *wire = taps_stage_attempt_get_alpn_wire(a, &wire_len);
  CHECK(wire != NULL);
  CHECK(SSL_set_alpn_protos(s->ssl, wire, (unsigned int)wire_len) == 0);
  const char *host = taps_stage_attempt_get_host_name(a);
  if (host != NULL) SSL_set_tlsext_host_name(s->ssl, host);
  drive(s);
  return 0;
}

static void stage_io(taps_stage_attempt *a, bool readable, bool writable, void *ud) {
  (void)readable;
  (void)writable;
  Session *s = session_of((Stage *)ud, a);
  CHECK(s != NULL && !s->handshake_done && !s->failed);
  drive(s);
}

static void stage_cancel(taps_stage_attempt *a, void *ud) {
  Session *s = session_of((Stage *)ud, a);
  CHECK(s != NULL);
  s->cancelled++;
  SSL_free(s->ssl);
  s->ssl = NULL;
  s->attempt = NULL;
}

static void stage_init(Stage *st) {
  memset(st, 0, sizeof *st);
  st->ctx = SSL_CTX_new(TLS_client_method());
  CHECK(st->ctx != NULL);
  SSL_CTX_set_min_proto_version(st->ctx, TLS1_3_VERSION);
  /* Trust the test's certificate, and check the server's against it. */
  CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(st->ctx), cert) == 1);
  SSL_CTX_set_verify(st->ctx, SSL_VERIFY_PEER, NULL);
}

static void stage_free(Stage *st) {
  for (int i = 0; i < st->n; i++) SSL_free(st->sessions[i].ssl);
  SSL_CTX_free(st->ctx);
}

/* ---- the connection --------------------------------------------------- */

typedef struct Ready {
  Stage *stage;
  int ready, failed;
  int handshake_was_done; /* the winner's session had finished when ready came */
  Session *winner;
} Ready;

static int on_ready(taps_connection *c, void *ud) {
  Ready *r = (Ready *)ud;
  r->ready++;
  int fd = taps_connection_get_fd(c);
  for (int i = 0; i < r->stage->n; i++) {
    Session *s = &r->stage->sessions[i];
    if (s->fd == fd && s->ssl != NULL && s->handshake_done) {
      r->winner = s;
      r->handshake_was_done = SSL_is_init_finished(s->ssl);
      s->attempt = NULL; /* the session is the program's now */
    }
  }
  return 0;
}

static int on_error(taps_connection *c, void *ud) {
  (void)c;
  ((Ready *)ud)->failed++;
  return 0;
}

/* ping / pong over the winner's session on the connection's fd. */
static void ping(Session *s) {
  CHECK(SSL_write(s->ssl, "ping", 4) == 4);
  char buf[8];
  for (int tries = 0; tries < 100; tries++) {
    int n = SSL_read(s->ssl, buf, sizeof buf);
    if (n == 4) {
      CHECK(memcmp(buf, "pong", 4) == 0);
      return;
    }
    CHECK(SSL_get_error(s->ssl, n) == SSL_ERROR_WANT_READ);
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    CHECK(poll(&p, 1, 2000) == 1);
  }
  CHECK(!"no pong");
}

/* Race `servers` (in that order) with the OpenSSL stage. */
static taps_connection *race(taps_event_loop *loop, Server **servers, int n, Stage *st, Ready *r,
                             uint32_t attempt_delay_ms) {
  taps_remote_endpoint *eps[4];
  for (int i = 0; i < n; i++) eps[i] = test_remote_literal(AF_INET, servers[i]->port);
  taps_racing_options opts = taps_racing_options_default();
  opts.connection_attempt_delay_ms = attempt_delay_ms;
  opts.total_timeout_ms = 10000;
  taps_preconnection *pre = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)eps, (size_t)n, NULL, &opts);
  for (int i = 0; i < n; i++) taps_remote_endpoint_free(eps[i]);
  CHECK(pre != NULL);
  const char *alpn[] = {"h2", "http/1.1"};
  CHECK_CODE(taps_preconnection_set_alpn(pre, alpn, 2), TAPS_OK);
  taps_stage_callbacks cb = TAPS_STAGE_CALLBACKS_INIT;
  cb.start = stage_start;
  cb.io = stage_io;
  cb.cancel = stage_cancel;
  CHECK_CODE(taps_preconnection_set_security_stage(pre, &cb, st), TAPS_OK);
  taps_connection_callbacks ccb = TAPS_CONNECTION_CALLBACKS_INIT;
  ccb.ready = on_ready;
  ccb.establishment_error = on_error;
  ccb.user_data = r;
  taps_connection *conn = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(pre, ccb, &conn), TAPS_OK);
  /* The race keeps what it needs: the preconnection may go now, or in the
   * stage's first start. */
  if (st->free_in_start == NULL) {
    taps_preconnection_free(pre);
  } else {
    st->free_in_start = pre;
  }
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  return conn;
}

static void print_times(taps_connection *c, size_t index, const char *what) {
  taps_attempt_info info;
  uint64_t connected = 0;
  CHECK_CODE(taps_connection_get_attempt(c, index, &info), TAPS_OK);
  CHECK_CODE(taps_connection_get_attempt_connected_us(c, index, &connected), TAPS_OK);
  CHECK(connected >= info.started_us && connected <= info.ended_us);
  fprintf(stderr, "  %s: started %" PRIu64 " µs, TCP connected after %" PRIu64 " µs, TLS done after %" PRIu64 " µs more\n",
          what, info.started_us, connected - info.started_us, info.ended_us - connected);
}

/* The slow server's TCP connects first; the fast one's handshake wins. */
static void first_connect_loses_to_first_handshake(void) {
  TEST_BEGIN("first_connect_loses_to_first_handshake");
  int fds_before = test_count_fds();
  Server slow, fast;
  server_start(&slow, SERVE_SLOW);
  server_start(&fast, SERVE_FAST);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  Stage st;
  stage_init(&st);
  Ready r = {.stage = &st};
  Server *order[] = {&slow, &fast};
  taps_connection *conn = race(loop, order, 2, &st, &r, 50);
  CHECK_EQ(r.ready, 1);
  CHECK_EQ(r.failed, 0);
  CHECK(r.winner != NULL);
  CHECK_EQ(r.handshake_was_done, 1);
  const char *alpn = taps_connection_get_alpn(conn);
  CHECK(alpn != NULL && strcmp(alpn, "h2") == 0);
  taps_attempt_info a0, a1;
  CHECK_CODE(taps_connection_get_attempt(conn, 0, &a0), TAPS_OK);
  CHECK_CODE(taps_connection_get_attempt(conn, 1, &a1), TAPS_OK);
  CHECK_EQ(a0.outcome, TAPS_ATTEMPT_OUTCOME_CANCELLED);
  CHECK_EQ(a1.outcome, TAPS_ATTEMPT_OUTCOME_WON);
  /* The loser's TCP was up first (in the same loop turn at the latest,
   * when valgrind slows the loop down). */
  uint64_t c0 = 0, c1 = 0;
  CHECK_CODE(taps_connection_get_attempt_connected_us(conn, 0, &c0), TAPS_OK);
  CHECK_CODE(taps_connection_get_attempt_connected_us(conn, 1, &c1), TAPS_OK);
  CHECK(c0 <= c1 && c1 < a1.ended_us);
  print_times(conn, 1, "winner");
  CHECK_EQ(st.starts, 2);
  for (int i = 0; i < st.n; i++) {
    Session *s = &st.sessions[i];
    if (s == r.winner) {
      CHECK_EQ(s->cancelled, 0);
      CHECK_EQ(s->index, 1);
    } else {
      CHECK_EQ(s->cancelled, 1);
    }
  }
  ping(r.winner);
  taps_connection_free(conn);
  stage_free(&st);
  taps_event_loop_free(loop);
  server_join(&slow);
  server_join(&fast);
  CHECK_EQ(test_count_fds(), fds_before);
  CHECK_EQ(fast.handshakes, 1);
  TEST_PASS("first_connect_loses_to_first_handshake");
}

/* A failed handshake starts the next attempt at once (not after the 2 s
 * Connection Attempt Delay). */
static void handshake_failure_starts_next_attempt(void) {
  TEST_BEGIN("handshake_failure_starts_next_attempt");
  int fds_before = test_count_fds();
  Server garbage, fast;
  server_start(&garbage, SERVE_GARBAGE);
  server_start(&fast, SERVE_FAST);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  Stage st;
  stage_init(&st);
  Ready r = {.stage = &st};
  st.free_in_start = (taps_preconnection *)1; /* race() puts the real one */
  Server *order[] = {&garbage, &fast};
  taps_connection *conn = race(loop, order, 2, &st, &r, 2000);
  CHECK_EQ(r.ready, 1);
  taps_attempt_info a0, a1;
  CHECK_CODE(taps_connection_get_attempt(conn, 0, &a0), TAPS_OK);
  CHECK_CODE(taps_connection_get_attempt(conn, 1, &a1), TAPS_OK);
  CHECK_EQ(a0.outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
  CHECK_EQ(a0.os_error, EPROTO);
  CHECK_EQ(a1.outcome, TAPS_ATTEMPT_OUTCOME_WON);
  CHECK(a1.started_us >= a0.ended_us && a1.started_us < 1000000);
  CHECK_EQ(st.sessions[0].failed, 1);
  CHECK_EQ(st.sessions[0].cancelled, 0);
  const char *alpn = taps_connection_get_alpn(conn);
  CHECK(alpn != NULL && strcmp(alpn, "h2") == 0);
  print_times(conn, 1, "winner after a failed handshake");
  ping(r.winner);
  taps_connection_free(conn);
  stage_free(&st);
  taps_event_loop_free(loop);
  server_join(&garbage);
  server_join(&fast);
  CHECK_EQ(test_count_fds(), fds_before);
  TEST_PASS("handshake_failure_starts_next_attempt");
}

int main(void) {
  /* A server writing to a client that went (a cancelled attempt) gets EPIPE. */
  signal(SIGPIPE, SIG_IGN);
  make_cert();
  first_connect_loses_to_first_handshake();
  handshake_failure_starts_next_attempt();
  X509_free(cert);
  EVP_PKEY_free(key);
  return 0;
}
