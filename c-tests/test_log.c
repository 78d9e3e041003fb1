/* The log callback: set at DEBUG, a race to a loopback listener logs an
 * attempt's start and end (with the address raced); every record has a
 * target and a message and comes with its user_data; a NULL callback
 * stops the records. */
#include "test_util.h"

typedef struct Seen {
  int records;
  int attempt_started;  /* "attempt 0 started" naming the address */
  int attempt_ended;    /* "attempt 0 (address tcp) won" */
  int race_started;
  int above_debug;      /* records more verbose than the level asked */
  char addr[32];
} Seen;

static void on_log(taps_log_level level, const char *target, const char *message, void *user_data) {
  Seen *s = user_data;
  s->records++;
  if (level > TAPS_LOG_LEVEL_DEBUG || level < TAPS_LOG_LEVEL_ERROR) s->above_debug++;
  if (target == NULL || message == NULL || strncmp(target, "taps_racing", 11) != 0) return;
  if (strstr(message, "attempt 0 started") && strstr(message, s->addr)) s->attempt_started++;
  if (strstr(message, "attempt 0 (") && strstr(message, s->addr) && strstr(message, ") won at ")) s->attempt_ended++;
  if (strstr(message, "started: 1 candidate(s) known")) s->race_started++;
  /* The one library call a callback may make. */
  if (strcmp(taps_strerror(TAPS_OK), "success") != 0) s->above_debug++;
}

/* Race the listener once, on a fresh loop. */
static int race_once(uint16_t port) {
  taps_event_loop *loop = taps_event_loop_new();
  if (loop == NULL) return -1;
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, port)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_preconnection *p = test_race(loop, r, 1, NULL, &rec);
  int ready = rec.ready;
  taps_connection_free(rec.conn);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  return ready;
}

int main(void) {
  TEST_BEGIN("log");
  uint16_t port;
  int l = test_listen(AF_INET, &port);
  CHECK(l >= 0);

  Seen seen;
  memset(&seen, 0, sizeof seen);
  snprintf(seen.addr, sizeof seen.addr, "127.0.0.1:%u", (unsigned)port);
  CHECK_CODE(taps_set_log_callback(TAPS_LOG_LEVEL_TRACE + 1, on_log, &seen), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_set_log_callback(TAPS_LOG_LEVEL_DEBUG, on_log, &seen), TAPS_OK);

  CHECK_EQ(race_once(port), 1);
  fprintf(stderr, "  %d records, %d attempt start(s), %d attempt end(s)\n", seen.records, seen.attempt_started,
          seen.attempt_ended);
  CHECK_EQ(seen.race_started, 1);
  CHECK_EQ(seen.attempt_started, 1);
  CHECK_EQ(seen.attempt_ended, 1);
  CHECK_EQ(seen.above_debug, 0);

  /* NULL: no record reaches the callback any more. */
  CHECK_CODE(taps_set_log_callback(TAPS_LOG_LEVEL_DEBUG, NULL, NULL), TAPS_OK);
  int before = seen.records;
  CHECK_EQ(race_once(port), 1);
  CHECK_EQ(seen.records, before);

  close(l);
  TEST_PASS("log");
  return 0;
}
