/* The public header compiles alone as strict C11 (-std=c11 -pedantic, no
 * feature-test macros), and twice (include guard). */
#include "taps_racing.h"
#include "taps_racing.h"

int taps_header_c_check(void);
int taps_header_c_check(void) {
  taps_racing_options o;
  taps_attempt_info a;
  taps_connection_callbacks cb;
  (void)o;
  (void)a;
  (void)cb;
  return TAPS_OK + (int)sizeof(taps_racing_options) + TAPS_ATTEMPT_OUTCOME_WON;
}
