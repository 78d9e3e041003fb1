/* The public header compiles alone as strict C11 (-std=c11 -pedantic, no
 * feature-test macros), and twice (include guard). */
#include "taps_racing.h"
#include "taps_racing.h"

int taps_header_c_check(void);
int taps_header_c_check(void) {
  RacingOptions o;
  AttemptInfo a;
  ConnectionCallbacks cb;
  (void)o;
  (void)a;
  (void)cb;
  return TAPS_OK + (int)sizeof(RacingOptions) + ATTEMPT_OUTCOME_WON;
}
