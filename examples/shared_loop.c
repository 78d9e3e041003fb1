/* One shared loop used by several independent components (here: threads
 * that know nothing of each other). Each calls taps_event_loop_shared with the
 * same key and gets its own handle on one loop running on its own thread:
 * its races, callbacks and user_data stay its own, and releasing its handle
 * cancels only its own pending races. The last release stops the loop.
 *
 *   shared_loop            4 components, 3 races each, to a listener on
 *                          127.0.0.1 that this program runs
 *   shared_loop HOST PORT  the same against HOST PORT
 *
 * Exit 0 when every race reached its own component, 1 otherwise. */
#include <taps_racing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { COMPONENTS = 4, RACES = 3 };

static const char *g_host = "127.0.0.1";
static uint16_t g_port;

/* One component: its own handle, its own records. */
typedef struct Component {
  int index;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int finished;
  int mine; /* callbacks that reached this component */
} Component;

static int on_done(taps_connection *c, void *ud) {
  Component *me = (Component *)ud;
  int err = taps_connection_get_error(c);
  printf("component %d: connection %llu %s\n", me->index, (unsigned long long)taps_connection_get_id(c),
         err == 0 ? "ready" : taps_strerror(err));
  pthread_mutex_lock(&me->mu);
  me->finished++;
  me->mine++;
  pthread_cond_signal(&me->cv);
  pthread_mutex_unlock(&me->mu);
  return 0;
}

static void *component_main(void *arg) {
  Component *me = (Component *)arg;
  taps_event_loop *loop = taps_event_loop_shared("example");
  if (loop == NULL) {
    fprintf(stderr, "taps_event_loop_shared: %s\n", taps_last_error_message());
    return NULL;
  }
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  if (taps_remote_endpoint_with_hostname(ep, g_host) != TAPS_OK || taps_remote_endpoint_with_port(ep, g_port) != TAPS_OK) {
    fprintf(stderr, "bad host or port: %s\n", taps_last_error_message());
    exit(1);
  }
  taps_racing_options opts = taps_racing_options_default();
  opts.total_timeout_ms = 10000;
  const taps_remote_endpoint *remotes[] = {ep};
  taps_preconnection *p = taps_preconnection_new(loop, remotes, 1, NULL, &opts);
  taps_remote_endpoint_free(ep);
  if (p == NULL) {
    fprintf(stderr, "taps_preconnection_new: %s\n", taps_last_error_message());
    exit(1);
  }
  taps_connection *conns[RACES];
  taps_connection_callbacks cb = {.ready = on_done, .establishment_error = on_done, .user_data = me};
  for (int i = 0; i < RACES; i++) {
    if (taps_preconnection_initiate_with_racing(p, cb, &conns[i]) != TAPS_OK) {
      fprintf(stderr, "initiate: %s\n", taps_last_error_message());
      exit(1);
    }
  }
  /* The callbacks run on the shared loop's thread; wait for ours. */
  pthread_mutex_lock(&me->mu);
  while (me->finished < RACES) pthread_cond_wait(&me->cv, &me->mu);
  pthread_mutex_unlock(&me->mu);
  for (int i = 0; i < RACES; i++) taps_connection_free(conns[i]);
  taps_preconnection_free(p);
  taps_event_loop_release(loop); /* the last component's release stops the loop */
  return NULL;
}

int main(int argc, char **argv) {
  int listener = -1;
  if (argc == 3) {
    g_host = argv[1];
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535) {
      fprintf(stderr, "bad port %s\n", argv[2]);
      return 2;
    }
    g_port = (uint16_t)port;
  } else if (argc == 1) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&sin, len) != 0 || listen(listener, 64) != 0 ||
        getsockname(listener, (struct sockaddr *)&sin, &len) != 0) {
      perror("listen on 127.0.0.1");
      return 1;
    }
    g_port = ntohs(sin.sin_port);
  } else {
    fprintf(stderr, "usage: %s [HOST PORT]\n", argv[0]);
    return 2;
  }

  Component comps[COMPONENTS];
  pthread_t threads[COMPONENTS];
  for (int i = 0; i < COMPONENTS; i++) {
    memset(&comps[i], 0, sizeof comps[i]);
    comps[i].index = i;
    pthread_mutex_init(&comps[i].mu, NULL);
    pthread_cond_init(&comps[i].cv, NULL);
    pthread_create(&threads[i], NULL, component_main, &comps[i]);
  }
  int ok = 1;
  for (int i = 0; i < COMPONENTS; i++) {
    pthread_join(threads[i], NULL);
    if (comps[i].mine != RACES) ok = 0;
    pthread_mutex_destroy(&comps[i].mu);
    pthread_cond_destroy(&comps[i].cv);
  }
  if (listener >= 0) close(listener);
  printf("%s\n", ok ? "every race reached its own component" : "a component missed a callback");
  return ok ? 0 : 1;
}
