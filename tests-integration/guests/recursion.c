/* recursion: a deep call stack and a large stack frame.
 *
 * - 100000 nested calls of a function whose frame cannot be optimised away
 *   (a volatile local; the result depends on every level), a few megabytes
 *   of stack in all, well within the default 8 MiB limit;
 * - mutual recursion (is_even/is_odd) 50000 deep;
 * - Ackermann(2, n) and naive Fibonacci(24): many short calls and returns;
 * - a 1 MiB array on the stack, written and read back (the stack grows
 *   down over untouched pages, which the kernel or emulator must map). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"

#define DEPTH 100000

__attribute__((noinline)) static uint64_t deep(uint32_t n) {
    volatile uint32_t keep = n * 2654435761u;
    if (n == 0)
        return 1;
    uint64_t below = deep(n - 1);
    return below * 31 + keep;
}

__attribute__((noinline)) static int is_odd(uint32_t n);

__attribute__((noinline)) static int is_even(uint32_t n) {
    volatile uint32_t pad = n;
    return pad == 0 ? 1 : is_odd(pad - 1);
}

__attribute__((noinline)) static int is_odd(uint32_t n) {
    volatile uint32_t pad = n;
    return pad == 0 ? 0 : is_even(pad - 1);
}

__attribute__((noinline)) static uint64_t ackermann(uint64_t m, uint64_t n) {
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

__attribute__((noinline)) static uint32_t fib(uint32_t n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) static uint64_t big_frame(uint32_t seed) {
    volatile unsigned char block[1 << 20];
    for (uint32_t i = 0; i < sizeof block; i += 64)
        block[i] = (unsigned char)(seed + i / 64);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < sizeof block; i += 64)
        sum = sum * 131 + block[i];
    return sum;
}

/* Count the frames on the way down, and check the stack grows downwards. */
static uintptr_t first_frame, last_frame;

__attribute__((noinline)) static uint32_t measure(uint32_t n) {
    volatile char marker = 0;
    if (n == DEPTH)
        first_frame = (uintptr_t)&marker;
    if (n == 1) {
        last_frame = (uintptr_t)&marker;
        return marker + 1;
    }
    return measure(n - 1) + marker + 1;
}

int main(void) {
    printf("recursion on %s\n", GUEST_ARCH);
    printf("deep(%d): %016llx\n", DEPTH, (unsigned long long)deep(OPAQUE(DEPTH)));
    printf("is_even(50000): %d, is_odd(49999): %d\n", is_even(OPAQUE(50000u)),
           is_odd(OPAQUE(49999u)));
    printf("ackermann(2, 300): %llu\n", (unsigned long long)ackermann(2, OPAQUE(300)));
    printf("fib(24): %u\n", fib(OPAQUE(24u)));
    printf("1 MiB stack frame: %016llx\n", (unsigned long long)big_frame(OPAQUE(7u)));
    uint32_t frames = measure(OPAQUE((uint32_t)DEPTH));
    printf("frames counted: %u, stack grows down: %s\n", frames,
           last_frame < first_frame ? "yes" : "no");
    CHECK(frames == DEPTH);
    CHECK(ackermann(2, 300) == 603);
    CHECK(fib(24) == 46368);
    return guest_exit_status("recursion");
}
