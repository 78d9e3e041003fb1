/* The public header compiles alone as strict C (-std=c11 and -std=c99,
 * -pedantic -Werror, no feature-test macros), twice (include guard), and
 * with the 0.1 compat header after it (twice too). */
#include "taps_racing.h"
#include "taps_racing.h"
#include "taps_racing_compat.h"
#include "taps_racing_compat.h"

#if !defined(TAPS_RACING_VERSION_MAJOR) || !defined(TAPS_RACING_VERSION_MINOR) || \
    !defined(TAPS_RACING_VERSION_PATCH) || !defined(TAPS_RACING_VERSION_STRING)
#error "taps_racing.h lacks the TAPS_RACING_VERSION_* macros"
#endif
#if TAPS_RACING_VERSION_MAJOR < 0 || TAPS_RACING_VERSION_MINOR < 0 || TAPS_RACING_VERSION_PATCH < 0
#error "TAPS_RACING_VERSION_* are not numbers"
#endif

int taps_header_c_check(void);
int taps_header_c_check(void) {
  taps_racing_options o;
  taps_attempt_info a;
  taps_connection_callbacks cb;
  (void)o;
  (void)a;
  (void)cb;
  /* The 0.1 spellings name the same types and constants. */
  RacingOptions old_o = taps_racing_options_default();
  struct Connection *old_c = (taps_connection *)0;
  (void)old_o;
  (void)old_c;
  (void)sizeof(char[ATTEMPT_OUTCOME_WON == TAPS_ATTEMPT_OUTCOME_WON ? 1 : -1]);
  return TAPS_OK + (int)sizeof(taps_racing_options) + TAPS_ATTEMPT_OUTCOME_WON;
}
