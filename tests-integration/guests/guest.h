/* Shared helpers for the test guests: architecture name, an optimisation
 * barrier, and a failure counter that becomes the exit status.
 *
 * Every guest prints only deterministic facts: no pids, addresses, times,
 * file descriptor numbers or random values. */
#ifndef VM_GUEST_H
#define VM_GUEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__riscv) && __riscv_xlen == 64
#define GUEST_ARCH "riscv64"
#elif defined(__aarch64__)
#define GUEST_ARCH "aarch64"
#elif defined(__x86_64__)
#define GUEST_ARCH "x86_64"
#else
#error "unsupported guest architecture"
#endif

/* The value of x, hidden from the optimiser: the operation that uses it is
 * done at run time, by the instruction under test, not folded at compile time.
 * OPAQUE keeps it in a register (integers and pointers), OPAQUE_M in memory
 * (any type, floating point included). */
#define OPAQUE(x)                                                              \
    ({                                                                         \
        __auto_type opaque_v_ = (x);                                         \
        __asm__ volatile("" : "+r"(opaque_v_));                                \
        opaque_v_;                                                             \
    })
#define OPAQUE_M(x)                                                            \
    ({                                                                         \
        __auto_type opaque_v_ = (x);                                         \
        __asm__ volatile("" : "+m"(opaque_v_));                                \
        opaque_v_;                                                             \
    })

static int guest_failures;

/* Record a failed expectation: one line on stdout (so that it is compared
 * too), and the program exits 1 at the end. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("CHECK FAILED line %d: %s\n", __LINE__, #cond);             \
            guest_failures++;                                                  \
        }                                                                      \
    } while (0)

/* The exit status of main: 0 when every CHECK held. */
static inline int guest_exit_status(const char *name) {
    if (guest_failures) {
        printf("%s: %d check(s) failed\n", name, guest_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
