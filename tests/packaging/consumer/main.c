/* A program that uses an installed taps_racing (tests/packaging/check_install.sh). */
#include <stdio.h>
#include <taps_racing.h>

int main(void) {
  printf("taps_strerror(0) = %s, taps_last_error() = %d\n", taps_strerror(0), taps_last_error());
  return taps_last_error() == 0 ? 0 : 1;
}
