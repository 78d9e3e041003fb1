/* Shared loops under load, through the public header on loopback:
 * 8 threads x 8 clients (each a taps_event_loop_shared handle of one key) start
 * $TAPS_STRESS_RACES races in all (default 10,000): to listeners (ready;
 * half freed inside the callback), to a refusing port (establishment_error),
 * and to a blackholed port, freed at once (no callback). Every callback
 * must reach the client that asked, exactly once, on the shared loop's one
 * thread; connection ids are process-unique. Each client finally leaves a
 * race pending and releases its handle: that race alone is cancelled, with
 * no callback, while the other clients go on. When all are released the
 * loop's thread is gone (joined), and no fd and no heap growth remains.
 *
 * Also run under valgrind --tool=helgrind with fewer races (ctest
 * c_loop_shared_helgrind): calls from many threads at once, checked for
 * data races and lock-order problems. */
#include "test_util.h"

#include <malloc.h>
#include <pthread.h>

enum { THREADS = 8, CLIENTS = 8, WINDOW = 4, LISTENERS = 4 };
#define MAGIC 0x7a9e5c11u
#define KEY "test_loop_shared"

enum Kind { LISTEN_FREE_IN_CB, LISTEN, REFUSED, BLACKHOLE };

struct ThreadCtx;

typedef struct RaceRec {
  struct Client *client;
  taps_connection *conn; /* written by initiate before the race starts */
  enum Kind kind;
  int ready, error, other;
  int error_code;
  uint64_t id; /* from the callback */
} RaceRec;

typedef struct Client {
  unsigned magic;
  struct ThreadCtx *ctx;
  int index; /* 0 .. THREADS*CLIENTS-1 */
  taps_event_loop *loop;
  taps_preconnection *pre[4]; /* by Kind (LISTEN_FREE_IN_CB and LISTEN share one) */
  RaceRec *races;
  int n, started, finished; /* finished: under ctx->mu */
  int wrong;                /* callbacks that broke a rule, under ctx->mu */
  pthread_t cb_thread;
  int have_cb_thread;
} Client;

typedef struct ThreadCtx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  pthread_t self; /* the same, written by the thread itself under mu */
  int index;
  Client clients[CLIENTS];
} ThreadCtx;

static uint16_t g_listen_port[LISTENERS], g_refused_port, g_blackhole_port;

static enum Kind kind_of(int i) {
  switch (i % 10) {
    case 3:
    case 7: return REFUSED;
    case 9: return BLACKHOLE;
    default: return (i % 2) ? LISTEN : LISTEN_FREE_IN_CB;
  }
}

static void note(taps_connection *c, RaceRec *rec, int *counter, int free_it) {
  Client *cl = rec->client;
  ThreadCtx *ctx = cl->ctx;
  pthread_mutex_lock(&ctx->mu);
  if (cl->magic != MAGIC || c != rec->conn || pthread_equal(pthread_self(), ctx->self)) cl->wrong++;
  if (cl->have_cb_thread && !pthread_equal(cl->cb_thread, pthread_self())) cl->wrong++;
  cl->cb_thread = pthread_self();
  cl->have_cb_thread = 1;
  (*counter)++;
  rec->id = taps_connection_get_id(c);
  rec->error_code = taps_connection_get_error(c);
  cl->finished++;
  pthread_cond_broadcast(&ctx->cv);
  pthread_mutex_unlock(&ctx->mu);
  if (free_it) taps_connection_free(c); /* safe inside the callback */
}

static int cb_ready(taps_connection *c, void *ud) {
  RaceRec *rec = (RaceRec *)ud;
  note(c, rec, &rec->ready, rec->kind == LISTEN_FREE_IN_CB);
  return 0;
}

static int cb_error(taps_connection *c, void *ud) {
  RaceRec *rec = (RaceRec *)ud;
  note(c, rec, &rec->error, 0);
  return 0;
}

static int cb_other(taps_connection *c, void *ud) {
  /* connection_error or closed: allowed (the acceptor closes at once) but
   * must reach the right client too; not counted as finishing. */
  RaceRec *rec = (RaceRec *)ud;
  Client *cl = rec->client;
  pthread_mutex_lock(&cl->ctx->mu);
  if (cl->magic != MAGIC || c != rec->conn) cl->wrong++;
  rec->other++;
  pthread_mutex_unlock(&cl->ctx->mu);
  return 0;
}

static taps_connection_callbacks callbacks_for(RaceRec *rec) {
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = cb_ready;
  cb.establishment_error = cb_error;
  cb.connection_error = cb_other;
  cb.closed = cb_other;
  cb.user_data = rec;
  return cb;
}

static taps_preconnection *pre_for(taps_event_loop *loop, uint16_t port) {
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  const taps_remote_endpoint *r[1] = {ep};
  taps_preconnection *p = taps_preconnection_new(loop, r, 1, NULL, NULL);
  CHECK(p != NULL);
  taps_remote_endpoint_free(ep);
  return p;
}

static void client_open(Client *cl) {
  cl->loop = taps_event_loop_shared(KEY);
  CHECK(cl->loop != NULL);
  /* A shared handle cannot be run or embedded by its client. */
  CHECK_CODE(taps_event_loop_run_once(cl->loop, 0), TAPS_ERROR_INVALID_STATE);
  CHECK_CODE(taps_event_loop_get_fd(cl->loop), TAPS_ERROR_INVALID_STATE);
  CHECK_CODE(taps_event_loop_stop_thread(cl->loop), TAPS_ERROR_INVALID_STATE);
  cl->pre[LISTEN] = pre_for(cl->loop, g_listen_port[cl->index % LISTENERS]);
  cl->pre[LISTEN_FREE_IN_CB] = cl->pre[LISTEN];
  cl->pre[REFUSED] = pre_for(cl->loop, g_refused_port);
  cl->pre[BLACKHOLE] = pre_for(cl->loop, g_blackhole_port);
}

static void start_race(Client *cl, int i) {
  RaceRec *rec = &cl->races[i];
  rec->client = cl;
  rec->kind = kind_of(i);
  CHECK_CODE(taps_preconnection_initiate_with_racing(cl->pre[rec->kind], callbacks_for(rec), &rec->conn), TAPS_OK);
  if (rec->kind == BLACKHOLE) {
    /* Cancelled from this thread while it races on the loop's thread. */
    taps_connection_free(rec->conn);
    pthread_mutex_lock(&cl->ctx->mu);
    cl->finished++;
    pthread_mutex_unlock(&cl->ctx->mu);
  }
}

static int client_inflight(Client *cl) {
  pthread_mutex_lock(&cl->ctx->mu);
  int n = cl->started - cl->finished;
  pthread_mutex_unlock(&cl->ctx->mu);
  return n;
}

/* Whether a client of ctx may start a race now; call with ctx->mu held. */
static int room_locked(ThreadCtx *ctx) {
  for (int c = 0; c < CLIENTS; c++) {
    Client *cl = &ctx->clients[c];
    if (cl->started < cl->n && cl->started - cl->finished < WINDOW) return 1;
  }
  return 0;
}

static void *thread_main(void *arg) {
  ThreadCtx *ctx = (ThreadCtx *)arg;
  pthread_mutex_lock(&ctx->mu);
  ctx->self = pthread_self();
  pthread_mutex_unlock(&ctx->mu);
  for (int c = 0; c < CLIENTS; c++) client_open(&ctx->clients[c]);
  /* Start every race, at most WINDOW in flight per client, round robin.
   * A hang is caught by ctest's timeout (plain waits: helgrind checks
   * them best). */
  for (;;) {
    int all_started = 1, progressed = 0;
    for (int c = 0; c < CLIENTS; c++) {
      Client *cl = &ctx->clients[c];
      while (cl->started < cl->n && client_inflight(cl) < WINDOW) {
        pthread_mutex_lock(&ctx->mu);
        int i = cl->started++;
        pthread_mutex_unlock(&ctx->mu);
        start_race(cl, i);
        progressed = 1;
      }
      if (cl->started < cl->n) all_started = 0;
    }
    if (all_started) break;
    if (!progressed) {
      pthread_mutex_lock(&ctx->mu);
      while (!room_locked(ctx)) pthread_cond_wait(&ctx->cv, &ctx->mu);
      pthread_mutex_unlock(&ctx->mu);
    }
  }
  /* Each client: wait for its own races, leave one pending, release. */
  for (int c = 0; c < CLIENTS; c++) {
    Client *cl = &ctx->clients[c];
    pthread_mutex_lock(&ctx->mu);
    while (cl->finished < cl->n) pthread_cond_wait(&ctx->cv, &ctx->mu);
    pthread_mutex_unlock(&ctx->mu);
    RaceRec *pending = &cl->races[cl->n];
    pending->client = cl;
    pending->kind = BLACKHOLE;
    CHECK_CODE(taps_preconnection_initiate_with_racing(cl->pre[BLACKHOLE], callbacks_for(pending), &pending->conn),
               TAPS_OK);
    for (int k = 0; k < 4; k++)
      if (k != LISTEN_FREE_IN_CB) taps_preconnection_free(cl->pre[k]);
    taps_event_loop_release(cl->loop);
    /* Only this client's race was cancelled, silently. */
    CHECK_CODE(taps_connection_get_error(pending->conn), TAPS_ERROR_CANCELLED);
    pthread_mutex_lock(&ctx->mu);
    CHECK_EQ(pending->ready + pending->error + pending->other, 0);
    pthread_mutex_unlock(&ctx->mu);
    taps_connection_free(pending->conn);
    /* The established ones this client still owns. */
    for (int i = 0; i < cl->n; i++) {
      RaceRec *rec = &cl->races[i];
      if (rec->kind == LISTEN || rec->kind == REFUSED) {
        CHECK_EQ(taps_connection_get_id(rec->conn), rec->id);
        taps_connection_free(rec->conn);
      }
    }
  }
  return NULL;
}

/* Threads of this process named "taps-loop". */
static int count_loop_threads(void) {
  DIR *d = opendir("/proc/self/task");
  CHECK(d != NULL);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], name[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    if (fgets(name, sizeof name, f) != NULL && strncmp(name, "taps-loop", 9) == 0) n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

/* Accepts and closes every connection to the listeners until told to stop. */
static int g_listeners[LISTENERS];
static int g_stop_pipe[2];

static void *acceptor_main(void *arg) {
  (void)arg;
  struct pollfd pfd[LISTENERS + 1];
  for (int i = 0; i < LISTENERS; i++) pfd[i] = (struct pollfd){g_listeners[i], POLLIN, 0};
  pfd[LISTENERS] = (struct pollfd){g_stop_pipe[0], POLLIN, 0};
  for (;;) {
    if (poll(pfd, LISTENERS + 1, -1) < 0 && errno != EINTR) break;
    if (pfd[LISTENERS].revents) break;
    for (int i = 0; i < LISTENERS; i++)
      if (pfd[i].revents) test_drain(g_listeners[i]);
  }
  return NULL;
}

static size_t heap_in_use(void) {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static int env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  return s && *s ? atoi(s) : dflt;
}

/* One round: THREADS x CLIENTS clients, `total` races in all. */
static void round_of(int total, int threads) {
  ThreadCtx *ctx = calloc((size_t)threads, sizeof *ctx);
  CHECK(ctx != NULL);
  int nclients = threads * CLIENTS;
  for (int t = 0; t < threads; t++) {
    pthread_mutex_init(&ctx[t].mu, NULL);
    pthread_cond_init(&ctx[t].cv, NULL);
    ctx[t].index = t;
    for (int c = 0; c < CLIENTS; c++) {
      Client *cl = &ctx[t].clients[c];
      cl->magic = MAGIC;
      cl->ctx = &ctx[t];
      cl->index = t * CLIENTS + c;
      cl->n = total / nclients + (cl->index < total % nclients);
      cl->races = calloc((size_t)cl->n + 1, sizeof *cl->races);
      CHECK(cl->races != NULL);
    }
  }
  for (int t = 0; t < threads; t++) CHECK_EQ(pthread_create(&ctx[t].thread, NULL, thread_main, &ctx[t]), 0);
  /* While they run: one loop thread for the key, however many clients. */
  test_sleep_ms(20);
  int loop_threads = count_loop_threads();
  for (int t = 0; t < threads; t++) CHECK_EQ(pthread_join(ctx[t].thread, NULL), 0);
  CHECK(loop_threads <= 1);

  int ready = 0, failed = 0, other = 0, wrong = 0, n = 0;
  uint64_t *ids = calloc((size_t)total, sizeof *ids);
  CHECK(ids != NULL);
  int nids = 0;
  for (int t = 0; t < threads; t++) {
    for (int c = 0; c < CLIENTS; c++) {
      Client *cl = &ctx[t].clients[c];
      wrong += cl->wrong;
      for (int i = 0; i < cl->n; i++) {
        RaceRec *rec = &cl->races[i];
        n++;
        other += rec->other;
        switch (rec->kind) {
          case LISTEN:
          case LISTEN_FREE_IN_CB:
            if (rec->ready != 1 || rec->error != 0) {
              fprintf(stderr, "client %d race %d: ready %d error %d (code %d)\n", cl->index, i, rec->ready,
                      rec->error, rec->error_code);
              wrong++;
            }
            break;
          case REFUSED:
            if (rec->error != 1 || rec->ready != 0 || rec->error_code != TAPS_ERROR_ALL_ATTEMPTS_FAILED) wrong++;
            break;
          case BLACKHOLE:
            if (rec->ready + rec->error + rec->other != 0) wrong++;
            break;
        }
        ready += rec->ready;
        failed += rec->error;
        if (rec->ready + rec->error == 1) {
          if (rec->id == 0) wrong++;
          ids[nids++] = rec->id;
        }
      }
      free(cl->races);
    }
    /* Every client of every thread saw its callbacks on one thread. */
    for (int c = 1; c < CLIENTS; c++)
      if (!pthread_equal(ctx[t].clients[c].cb_thread, ctx[0].clients[0].cb_thread)) wrong++;
    pthread_mutex_destroy(&ctx[t].mu);
    pthread_cond_destroy(&ctx[t].cv);
  }
  qsort(ids, (size_t)nids, sizeof *ids, cmp_u64);
  for (int i = 1; i < nids; i++)
    if (ids[i] == ids[i - 1]) wrong++;
  free(ids);
  free(ctx);
  fprintf(stderr, "  %d races: %d ready, %d establishment_error, %d cancelled, %d other callbacks, %d wrong\n", n,
          ready, failed, n - ready - failed, other, wrong);
  CHECK_EQ(n, total);
  CHECK_EQ(wrong, 0);
  CHECK(ready > 0 && failed > 0);
  /* The last release stopped and joined the loop's thread. */
  CHECK_EQ(count_loop_threads(), 0);
}

int main(void) {
  int total = env_int("TAPS_STRESS_RACES", 10000);
  int heap_check = env_int("TAPS_STRESS_HEAP_CHECK", 1);
  CHECK(total >= THREADS * CLIENTS);
  for (int i = 0; i < LISTENERS; i++) {
    g_listeners[i] = test_bind_socket(AF_INET, 0, 4096, &g_listen_port[i]);
    CHECK(g_listeners[i] >= 0);
  }
  int refusing = test_refusing(AF_INET, &g_refused_port);
  CHECK(refusing >= 0);
  int filler = -1;
  int bh = test_blackhole(AF_INET, 0, &g_blackhole_port, &filler);
  if (bh < 0) test_skip("no blackhole on 127.0.0.1");
  CHECK_EQ(pipe(g_stop_pipe), 0);
  pthread_t acceptor;
  CHECK_EQ(pthread_create(&acceptor, NULL, acceptor_main, NULL), 0);

  /* Warm-up: the first use of threads, stdio and the allocator's arenas. */
  TEST_BEGIN("shared_loop_warm_up");
  round_of(THREADS * CLIENTS * 10, THREADS);
  TEST_PASS("shared_loop_warm_up");

  int fds_before = test_count_fds();
  size_t heap_before = heap_in_use();
  TEST_BEGIN("shared_loop_stress");
  uint64_t t0 = test_now_us();
  round_of(total, THREADS);
  double secs = (test_now_us() - t0) / 1e6;
  fprintf(stderr, "  %d races through one shared loop in %.2f s (%.0f races/s)\n", total, secs, total / secs);
  /* No fd left (the acceptor may hold one for an instant). */
  for (int w = 0; w < 200 && test_count_fds() != fds_before; w++) test_sleep_ms(10);
  if (test_count_fds() != fds_before) test_list_fds("after the stress round");
  CHECK_EQ(test_count_fds(), fds_before);
  size_t heap_after = heap_in_use();
  long long growth = (long long)heap_after - (long long)heap_before;
  fprintf(stderr, "  heap in use: %zu bytes before, %zu after (%+lld)\n", heap_before, heap_after, growth);
  /* A leak of anything per race (a taps_connection alone is hundreds of bytes)
   * would grow it by megabytes. */
  if (heap_check) CHECK(growth < 64 * 1024);
  TEST_PASS("shared_loop_stress");

  CHECK_EQ(write(g_stop_pipe[1], "x", 1), 1);
  CHECK_EQ(pthread_join(acceptor, NULL), 0);
  close(g_stop_pipe[0]);
  close(g_stop_pipe[1]);
  for (int i = 0; i < LISTENERS; i++) close(g_listeners[i]);
  close(refusing);
  close(filler);
  close(bh);
  return 0;
}
