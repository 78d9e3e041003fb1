/* A program that uses the compiler's runtime builtins itself (-ftrapv makes
   __int128 and long long arithmetic call __mulvti3, __addvdi3 ...), linked
   with libtaps_racing.a, which carries its own copies (Rust's
   compiler_builtins): the link must neither fail nor misbehave
   (tests/packaging/check_install.sh). */
#include <stdio.h>
#include <taps_racing.h>

__int128 __mulvti3(__int128 a, __int128 b);

int main(int argc, char **argv) {
  (void)argv;
  volatile __int128 a = argc + 6, b = 7;
  volatile long long c = argc + 40, d = 1;
  __int128 product = __mulvti3(a, b);
  long long sum = c + d;
  printf("%d %lld %s\n", (int)product, sum, taps_strerror(0));
  return product == 49 && sum == 42 ? 0 : 1;
}
