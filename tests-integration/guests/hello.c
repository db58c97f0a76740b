/* hello: the README's first guest. Greets, echoes its arguments and prints a
 * value it computes (the number of primes below 10000), so that a run shows
 * loads, stores, branches, calls and a syscall or two working together. */
#include <stdio.h>
#include <string.h>

#include "guest.h"

static int count_primes(int limit) {
    static unsigned char composite[10000];
    int count = 0;
    memset(composite, 0, sizeof composite);
    for (int i = 2; i < limit; i++) {
        if (composite[i])
            continue;
        count++;
        for (int j = i * i; j < limit; j += i)
            composite[j] = 1;
    }
    return count;
}

int main(int argc, char **argv) {
    printf("Hello from a %s guest!\n", GUEST_ARCH);
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    printf("primes below 10000: %d\n", count_primes(OPAQUE(10000)));
    return 0;
}
