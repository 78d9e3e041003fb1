/* The loop's history of earlier races through the C API, with a mock
 * protocol under the manual clock (HEv3 draft -04 §5.3, §6; RFC 8305 §5):
 * a failed address goes last in the next race, the Connection Attempt
 * Delay follows the RTTs known, the 10 ms between starts, the switch,
 * clear, size, export and import. Loopback addresses only. */
#include "mock.h"

static const char *const three[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};

/* Global attempt #k (over every race of the Mock) is ready / failed. */
static void ready_k(Mock *m, int k) {
  CHECK(k < m->n_attempts && m->attempts[k].live);
  m->attempts[k].live = 0;
  CHECK_CODE(taps_protocol_attempt_ready(m->attempts[k].handle, -1, (void *)(intptr_t)(k + 1)), TAPS_OK);
}

static void fail_k(Mock *m, int k, int err) {
  CHECK(k < m->n_attempts && m->attempts[k].live);
  m->attempts[k].live = 0;
  CHECK_CODE(taps_protocol_attempt_failed(m->attempts[k].handle, err), TAPS_OK);
}

/* End the Mock's race: free its connection, start the next one (whose
 * attempts take the slots from 0 again). */
static void next_race(Mock *m) {
  taps_connection_free(m->conn);
  m->conn = NULL;
  mock_run(m);
  memset(m->attempts, 0, sizeof m->attempts);
  m->n_attempts = 0;
  m->ready = m->establishment_error = 0;
  mock_initiate(m);
}

/* Race 1: 127.0.0.1 refused at 20 ms, 127.0.0.2 ready 5 ms after its
 * start. Race 2: 127.0.0.2 (used, 5 ms RTT) first, 127.0.0.3 (unknown)
 * next at the minimum delay of 100 ms (3 × 5 ms is less), 127.0.0.1
 * (failed recently) last. */
static void case_failed_goes_last_and_delay_follows_rtt(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  mock_advance_to(&m, 20000);
  fail_k(&m, 0, ECONNREFUSED);
  mock_run(&m);
  mock_advance_to(&m, 25000);
  ready_k(&m, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 20000");
  size_t entries = 0, bytes = 0;
  CHECK_CODE(taps_event_loop_history_size(m.loop, &entries, &bytes), TAPS_OK);
  CHECK_EQ(entries, 2);
  CHECK(bytes > 0);

  next_race(&m);
  mock_advance_to(&m, 125000 - 1);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 20000", "m close 2 fd -1",
              "m start 127.0.0.2:443 at 25000");
  mock_advance_to(&m, 125000);
  mock_advance_to(&m, 225000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 20000", "m close 2 fd -1",
              "m start 127.0.0.2:443 at 25000", "m start 127.0.0.3:443 at 125000", "m start 127.0.0.1:443 at 225000");
  mock_finish(&m);
}

/* RFC 8305 §5: refused 0.5 ms after its start, the next attempt starts 10
 * ms after the previous start, not at once. */
static void case_refused_at_once_waits_10_ms(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  mock_advance(&m, 500);
  fail_k(&m, 0, ECONNREFUSED);
  mock_run(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), 10);
  mock_advance_to(&m, 9999);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0");
  mock_advance_to(&m, 10000);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 10000");
  mock_finish(&m);
}

/* Off: the second race keeps the RFC 6724 order. Export, clear, import. */
static void case_switch_clear_export_import(void) {
  Mock m;
  mock_setup(&m, three, 3, NULL);
  mock_initiate(&m);
  mock_advance_to(&m, 20000);
  fail_k(&m, 0, ECONNREFUSED);
  mock_run(&m);
  ready_k(&m, 1);
  mock_run(&m);

  char buf[4096];
  int n = taps_event_loop_export_history(m.loop, NULL, 0);
  CHECK(n > 0 && (size_t)n < sizeof buf);
  CHECK_EQ(taps_event_loop_export_history(m.loop, buf, (size_t)n), n); /* too small: nothing written */
  CHECK_EQ(taps_event_loop_export_history(m.loop, buf, sizeof buf), n);
  CHECK(strncmp(buf, "taps-racing-history 1\n", 22) == 0);
  CHECK_EQ(strlen(buf), (size_t)n);

  CHECK_CODE(taps_event_loop_set_history(m.loop, false), TAPS_OK);
  next_race(&m);
  MOCK_EXPECT(&m, "m start 127.0.0.1:443 at 0", "m start 127.0.0.2:443 at 20000", "m close 2 fd -1",
              "m start 127.0.0.1:443 at 20000");
  CHECK_CODE(taps_event_loop_set_history(m.loop, true), TAPS_OK);
  CHECK_CODE(taps_event_loop_clear_history(m.loop), TAPS_OK);
  size_t entries = 9;
  CHECK_CODE(taps_event_loop_history_size(m.loop, &entries, NULL), TAPS_OK);
  CHECK_EQ(entries, 0);
  CHECK_EQ(taps_event_loop_import_history(m.loop, buf), 2);
  CHECK_CODE(taps_event_loop_history_size(m.loop, &entries, NULL), TAPS_OK);
  CHECK_EQ(entries, 2);
  CHECK_CODE(taps_event_loop_import_history(m.loop, "taps-racing-history 1\nd nonsense\n"), TAPS_ERROR_INVALID_ARGUMENT);
  mock_finish(&m);
}

MOCK_MAIN(MOCK_CASE(failed_goes_last_and_delay_follows_rtt), MOCK_CASE(refused_at_once_waits_10_ms),
          MOCK_CASE(switch_clear_export_import))
