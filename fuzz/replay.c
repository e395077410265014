/*
** replay.c — run the fuzzer's inputs without libFuzzer: every file named
** on the command line, once.  This is how the seed corpus and the
** regression inputs run in `make test`, on every Lua version, with the
** project's own compiler.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) {
    static uint8_t buf[1 << 16];
    size_t n;
    FILE *f = fopen(argv[i], "rb");
    if (f == NULL) {
      perror(argv[i]);
      return 2;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
  }
  return 0;
}
