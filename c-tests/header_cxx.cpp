// The public header works from C++ (cbindgen cpp_compat: extern "C"): it
// compiles with -Wall -Wextra -Wpedantic -Werror, with the 0.1 compat
// header after it, and links against the static library.
#include "taps_racing.h"
#include "taps_racing_compat.h"

#include <cstdio>
#include <cstring>

int main() {
  std::fprintf(stderr, "test header_cxx ...\n");
  taps_racing_options o = taps_racing_options_default();
  if (o.connection_attempt_delay_ms != 250) return 1;
  if (std::strcmp(taps_strerror(-9999), "unknown error") != 0) return 1;
  taps_event_loop *loop = taps_event_loop_new();
  if (loop == nullptr) return 1;
  taps_event_loop_free(loop);
  taps_connection_free(nullptr);
  // The version macros and taps_version() agree.
  if (std::strcmp(taps_version(), TAPS_RACING_VERSION_STRING) != 0) return 1;
  static_assert(TAPS_RACING_VERSION_MAJOR >= 0 && TAPS_RACING_VERSION_MINOR >= 0 && TAPS_RACING_VERSION_PATCH >= 0,
                "version macros");
  // The 0.1 spellings, through the compat header.
  RacingOptions old_o = racing_options_default();
  if (old_o.race_count != o.race_count) return 1;
  EventLoop *old_loop = event_loop_new();
  if (old_loop == nullptr) return 1;
  event_loop_free(old_loop);
  static_assert(ATTEMPT_OUTCOME_WON == TAPS_ATTEMPT_OUTCOME_WON, "compat constants");
  std::fprintf(stderr, "test header_cxx ... ok\n");
  return 0;
}
