// A C++ program that uses an installed taps_racing through taps_racing.hpp
// (tests/packaging/check_install.sh): the wrapper's errors are exceptions.
#include <taps_racing.hpp>

#include <cstdio>
#include <cstring>

int main() {
  taps::EventLoop loop;
  try {
    taps::RemoteEndpoint().hostname("no spaces.example");
    std::puts("a bad host name was accepted");
    return 1;
  } catch (const taps::Error &e) {
    if (e.code() != TAPS_ERROR_INVALID_HOSTNAME) return 1;
  }
  std::printf("C++: taps_strerror(0) = %s, taps_version() = %s\n", taps_strerror(0), taps_version());
  return std::strcmp(taps_version(), TAPS_RACING_VERSION_STRING) == 0 ? 0 : 1;
}
