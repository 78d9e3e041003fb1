// The public header works from C++ (cbindgen cpp_compat: extern "C"): it
// compiles with -pedantic and links against the static library.
#include "taps_racing.h"

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
  std::fprintf(stderr, "test header_cxx ... ok\n");
  return 0;
}
