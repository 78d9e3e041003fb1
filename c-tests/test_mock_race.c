/* The race with a mock protocol under the manual clock (RFC 8305 §5,
 * RFC 9623 §4.3): exact start times, who is cancelled and who is closed,
 * what the connection reports. Loopback addresses only; the mock is the
 * only protocol in these races (see mock.h). */
#include "mock.h"

#include <pthread.h>

static const char *const three[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
static const char *const four[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"};

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* The first candidate is ready after the others started: they are
 * cancelled, the winner's fd and handle are reported, and the winner is
 * closed through the protocol when the connection is freed (the library
 * never closes the protocol's fd). */
static void case_first_wins_cancels_others(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  mock_advance_to(&m, 250000);
  mock_advance_to(&m, 500000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000",
              "m start 127.0.0.3:443 at 500000");
  CHECK_EQ(taps_connection_attempt_count(m.conn), 3);
  CHECK(taps_connection_get_protocol(m.conn) == NULL);
  CHECK_EQ(taps_connection_get_fd(m.conn), -1);

  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  mock_advance(&m, 5000);
  CHECK_EQ(m.ready, 0);
  mock_ready(&m, 0, sv[0], 7);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000",
              "m start 127.0.0.3:443 at 500000", "m cancel #1", "m cancel #2");
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(m.establishment_error, 0);
  CHECK_EQ(m.done_at_us, 505000);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_OK);
  CHECK(taps_connection_get_protocol(m.conn) != NULL);
  CHECK(strcmp(taps_connection_get_protocol(m.conn), "m") == 0);
  CHECK(taps_connection_get_protocol_connection(m.conn) == (void *)7);
  CHECK_EQ(taps_connection_get_fd(m.conn), sv[0]);
  struct sockaddr_storage ra;
  socklen_t ra_len = 0;
  CHECK_CODE(taps_connection_get_remote_address(m.conn, &ra, &ra_len), TAPS_OK);
  char buf[64];
  CHECK(strcmp(mock_addr_str((struct sockaddr *)&ra, buf, sizeof buf), "127.0.0.1:443") == 0);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 3);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "127.0.0.1:443", 0, 505000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.2:443", 250000, 505000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  MOCK_CHECK_ATTEMPT(&m, 2, "m", "127.0.0.3:443", 500000, 505000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  taps_attempt_info a = mock_info(&m, 0);
  CHECK(a.interface_name == NULL); /* the default path */

  /* Nothing more happens, however long we wait. */
  mock_advance(&m, 10 * 1000 * 1000);
  CHECK_EQ(m.n_log, 5);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);

  /* Freeing the connection closes the winner through the protocol. */
  taps_connection_free(m.conn);
  m.conn = NULL;
  CHECK_EQ(m.n_log, 6);
  char want[64];
  snprintf(want, sizeof want, "m close 7 fd %d", sv[0]);
  CHECK(strcmp(m.log[5], want) == 0);
  CHECK(fd_is_open(sv[0]));
  close(sv[0]);
  close(sv[1]);
  mock_finish(&m);
}

/* taps_connection_close on a user protocol's winner: the protocol's close, then
 * `closed` on the loop; freeing afterwards closes nothing more. */
static void case_close_winner(void) {
  Mock m;
  mock_setup(&m, three, 1, NULL);
  mock_initiate(&m);
  mock_ready(&m, 0, -1, 3);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(taps_connection_get_fd(m.conn), -1);
  taps_connection_close(m.conn);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m close 3 fd -1");
  CHECK_EQ(m.closed, 1);
  taps_connection_close(m.conn);
  mock_run(&m);
  CHECK_EQ(m.closed, 1);
  taps_connection_free(m.conn);
  m.conn = NULL;
  CHECK_EQ(m.n_log, 2);
  mock_finish(&m);
}

/* Every candidate fails: a failure starts the next at once (10 ms after the
 * previous start at the earliest, RFC 8305 §5), the last one
 * ends the race with establishment_error exactly once, and every attempt's
 * errno stays readable. */
static void case_all_fail(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  mock_advance(&m, 1000);
  mock_fail(&m, 0, ECONNREFUSED);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  mock_advance_to(&m, 10000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 10000");
  mock_advance_to(&m, 260000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 10000", "m start 127.0.0.3:443 at 260000");
  mock_advance_to(&m, 270000);
  mock_fail(&m, 1, EHOSTUNREACH);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 0); /* attempt #2 still runs */
  CHECK_EQ(m.n_log, 3);
  mock_advance_to(&m, 300000);
  mock_fail(&m, 2, ETIMEDOUT);
  mock_run(&m);
  CHECK_EQ(m.ready, 0);
  CHECK_EQ(m.establishment_error, 1);
  CHECK_EQ(m.done_at_us, 300000);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(taps_connection_get_os_error(m.conn), ETIMEDOUT);
  CHECK(taps_connection_get_protocol(m.conn) == NULL);
  CHECK_EQ(taps_connection_get_fd(m.conn), -1);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 3);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "127.0.0.1:443", 0, 1000, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.2:443", 10000, 270000, TAPS_ATTEMPT_OUTCOME_FAILED, EHOSTUNREACH);
  MOCK_CHECK_ATTEMPT(&m, 2, "m", "127.0.0.3:443", 260000, 300000, TAPS_ATTEMPT_OUTCOME_FAILED, ETIMEDOUT);
  taps_attempt_info past;
  CHECK_CODE(taps_connection_get_attempt(m.conn, 3, &past), TAPS_ERROR_OUT_OF_RANGE);
  /* No cancel or close for failed attempts, no second callback. */
  CHECK_EQ(m.n_log, 3);
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 5 * 1000 * 1000);
  CHECK_EQ(m.establishment_error, 1);
  CHECK_EQ(m.n_log, 3);
  mock_finish(&m);
}

/* `start` returning an errno fails the attempt at once, and the next
 * starts as soon as allowed: 10 ms after the previous start (RFC 8305 §5),
 * not after the 250 ms attempt delay. */
static void case_start_error_fails_at_once(void) {
  Mock m;
  MockProtocol *mp = mock_setup(&m, three, 2, NULL);
  mp->start_errno = ENETUNREACH;
  mock_initiate(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), 10);
  mock_advance_to(&m, 10000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 10000");
  CHECK_EQ(m.establishment_error, 1);
  CHECK_EQ(m.done_at_us, 10000);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(taps_connection_get_os_error(m.conn), ENETUNREACH);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "127.0.0.1:443", 0, 0, TAPS_ATTEMPT_OUTCOME_FAILED, ENETUNREACH);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.2:443", 10000, 10000, TAPS_ATTEMPT_OUTCOME_FAILED, ENETUNREACH);
  mock_finish(&m);
}

/* RFC 8305 §5: the first attempt at 0, the next exactly one taps_connection
 * Attempt Delay later (not 1 µs before); the timer stops when the race is
 * won. */
static void case_staggered_exact(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), 250);
  mock_advance(&m, 249999);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), 1); /* 1 µs, rounded up */
  mock_advance(&m, 1);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), 250);
  /* The second attempt wins at 260 ms: the first is cancelled, the third
   * never starts, and no timer is left. */
  mock_advance(&m, 10000);
  mock_ready(&m, 1, -1, 2);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000", "m cancel #0");
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(m.done_at_us, 260000);
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 250000);
  mock_advance(&m, 10 * 1000 * 1000);
  CHECK_EQ(m.n_log, 3);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 2);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "127.0.0.1:443", 0, 260000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.2:443", 250000, 260000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  mock_finish(&m);
}

/* A configured Connection Attempt Delay is exact too, and values below
 * 10 ms are clamped to 10 ms (RFC 8305 §5). */
static void case_staggered_custom_delay(void) {
  for (int clamp = 0; clamp < 2; clamp++) {
    Mock m;
    taps_racing_options opts = taps_racing_options_default();
    opts.connection_attempt_delay_ms = clamp ? 5 : 100;
    uint64_t d = clamp ? 10000 : 100000;
    mock_setup(&m, three, 3, &opts);
    mock_initiate(&m);
    mock_advance(&m, d - 1);
    CHECK_EQ(m.n_log, 1);
    mock_advance(&m, 1);
    mock_advance(&m, d - 1);
    CHECK_EQ(m.n_log, 2);
    mock_advance(&m, 1);
    char w1[64], w2[64];
    snprintf(w1, sizeof w1, "m start 127.0.0.2:443 at %" PRIu64, d);
    snprintf(w2, sizeof w2, "m start 127.0.0.3:443 at %" PRIu64, 2 * d);
    MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", w1, w2);
    /* Nothing left to start: no timer; the race waits for the attempts. */
    CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
    mock_fail(&m, 2, ECONNREFUSED);
    mock_fail(&m, 0, ECONNREFUSED);
    mock_fail(&m, 1, ECONNREFUSED);
    mock_run(&m);
    CHECK_EQ(m.establishment_error, 1);
    mock_finish(&m);
  }
}

/* One candidate: it starts at once and no racing timer is armed. */
static void case_single_candidate(void) {
  Mock m;
  mock_setup(&m, three, 1, NULL);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 10 * 1000 * 1000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(m.ready + m.establishment_error, 0);
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(m.done_at_us, 10 * 1000 * 1000);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "127.0.0.1:443", 0, 10 * 1000 * 1000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  mock_finish(&m);
}

/* Two attempts ready in the same tick: the first reported wins; the other
 * reported ready too, so it is closed (not cancelled). */
static void case_same_tick(void) {
  Mock m;
  mock_setup(&m, three, 2, NULL);
  mock_initiate(&m);
  mock_advance(&m, 250000);
  mock_advance(&m, 1000);
  mock_ready(&m, 1, -1, 2);
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000", "m close 1 fd -1");
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(m.establishment_error, 0);
  CHECK(taps_connection_get_protocol_connection(m.conn) == (void *)2);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.2:443", 250000, 251000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  taps_attempt_info a = mock_info(&m, 0);
  CHECK(a.outcome != TAPS_ATTEMPT_OUTCOME_WON && a.outcome != TAPS_ATTEMPT_OUTCOME_RUNNING);
  CHECK_EQ(a.ended_us, 251000);
  taps_connection_free(m.conn);
  m.conn = NULL;
  CHECK(strcmp(m.log[m.n_log - 1], "m close 2 fd -1") == 0);
  CHECK_EQ(m.n_log, 4);
  mock_finish(&m);
}

/* Success mid-race: pending candidates never start, running attempts are
 * cancelled. */
static void case_mid_race_success(void) {
  Mock m;
  mock_setup(&m, four, 4, NULL);
  mock_initiate(&m);
  mock_advance_to(&m, 250000);
  mock_advance_to(&m, 500000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000", "m start 127.0.0.3:443 at 500000");
  mock_advance_to(&m, 600000);
  mock_ready(&m, 1, -1, 2);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000", "m start 127.0.0.3:443 at 500000",
              "m cancel #0", "m cancel #2");
  CHECK_EQ(m.ready, 1);
  mock_advance(&m, 10 * 1000 * 1000);
  CHECK_EQ(m.n_log, 5);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 3);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "127.0.0.1:443", 0, 600000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.2:443", 250000, 600000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  MOCK_CHECK_ATTEMPT(&m, 2, "m", "127.0.0.3:443", 500000, 600000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  mock_finish(&m);
}

/* A protocol reported ready, but the race ended (here: the connection was
 * freed) before the loop took that completion. The header's `close`:
 * "Close a connection this protocol reported ready (... a late ready after
 * the race was decided)". So the reported connection must be closed, once,
 * and the attempt must not be cancelled as if it had never completed: a
 * protocol that released its attempt state when it completed cannot tell
 * what the cancel is about, and the connection it reported would leak. */
static void case_reported_ready_is_closed_not_cancelled(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  mock_advance(&m, 250000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000");
  mock_ready(&m, 0, -1, 7); /* queued for the loop, which has not run yet */
  taps_connection_free(m.conn);
  m.conn = NULL;
  mock_run(&m);
  MOCK_CHECK_LOG_HAS(&m, "m cancel #1");
  MOCK_CHECK_LOG_HAS(&m, "m close 7 fd -1");
  if (m.n_log != 4) mock_print_log(&m);
  CHECK_EQ(m.n_log, 4); /* and no cancel for #0 */
  CHECK_EQ(m.ready + m.establishment_error + m.closed, 0);
  mock_finish(&m);
}

/* A protocol may report ready from inside `start`. */
static void case_ready_inside_start(void) {
  Mock m;
  MockProtocol *mp = mock_setup(&m, three, 3, NULL);
  mp->ready_in_start = 9;
  mock_initiate(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(m.ready, 1);
  CHECK(taps_connection_get_protocol_connection(m.conn) == (void *)9);
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_finish(&m);
}

typedef struct ThreadArg {
  Mock *m;
  int index;
} ThreadArg;

static void *complete_from_thread(void *arg) {
  ThreadArg *t = (ThreadArg *)arg;
  mock_ready(t->m, t->index, -1, 5);
  return NULL;
}

/* Completions may come from any thread: the loop picks them up at its next
 * run. */
static void case_ready_from_other_thread(void) {
  Mock m;
  mock_setup(&m, three, 2, NULL);
  mock_initiate(&m);
  mock_advance(&m, 1000);
  ThreadArg t = {&m, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, complete_from_thread, &t) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(m.done_at_us, 1000);
  CHECK(taps_connection_get_protocol_connection(m.conn) == (void *)5);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  mock_finish(&m);
}

/* Freeing a racing connection cancels its running attempts at once, with
 * no callback. */
static void case_free_while_racing(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  mock_advance(&m, 250000);
  taps_connection_free(m.conn);
  m.conn = NULL;
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 250000", "m cancel #0", "m cancel #1");
  mock_advance(&m, 1000000);
  CHECK_EQ(m.n_log, 4);
  CHECK_EQ(m.ready + m.establishment_error + m.closed, 0);
  mock_finish(&m);
}

MOCK_MAIN(MOCK_CASE(first_wins_cancels_others), MOCK_CASE(close_winner), MOCK_CASE(all_fail),
          MOCK_CASE(start_error_fails_at_once), MOCK_CASE(staggered_exact), MOCK_CASE(staggered_custom_delay),
          MOCK_CASE(single_candidate), MOCK_CASE(same_tick), MOCK_CASE(mid_race_success),
          MOCK_CASE(reported_ready_is_closed_not_cancelled), MOCK_CASE(ready_inside_start), MOCK_CASE(ready_from_other_thread),
          MOCK_CASE(free_while_racing))
