/* bench_cpu: the CPU-bound benchmark guest.
 *
 *     bench_cpu [ITERATIONS]      (default 40)
 *
 * Each iteration runs a deterministic mix: an integer hashing loop
 * (multiply, xor, shifts, rotates), a sieve of Eratosthenes (byte loads and
 * stores, branches), a 64x64 double matrix multiply (floating-point
 * multiply-add, strided loads) and a qsort of 16384 integers (calls through a
 * function pointer, data-dependent branches). It prints one checksum over
 * all of it, which depends only on ITERATIONS. About 1 to 2 s under
 * qemu-riscv64 at the default; tests run it with a small count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

#define HASH_ROUNDS 2000000
#define SIEVE_LIMIT 200000
#define N 64
#define SORT_COUNT 16384

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v;
    h *= UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

static uint64_t hash_loop(uint64_t seed) {
    uint64_t x = seed | 1, h = UINT64_C(0xcbf29ce484222325);
    for (uint32_t i = 0; i < HASH_ROUNDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h = (h ^ x) * UINT64_C(0x9e3779b97f4a7c15);
        h = (h << 23) | (h >> 41);
        h += i;
    }
    return h;
}

static unsigned char composite[SIEVE_LIMIT];

static uint64_t sieve(void) {
    memset(composite, 0, sizeof composite);
    uint64_t count = 0, sum = 0;
    for (uint32_t i = 2; i < SIEVE_LIMIT; i++) {
        if (composite[i])
            continue;
        count++;
        sum += i;
        for (uint64_t j = (uint64_t)i * i; j < SIEVE_LIMIT; j += i)
            composite[j] = 1;
    }
    return count * 1000003 + sum;
}

static double a[N][N], b[N][N], c[N][N];

static uint64_t matmul(uint32_t seed) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (double)((i * 7 + j * 3 + seed) % 17) / 8.0 - 1.0;
            b[i][j] = (double)((i * 5 + j * 11 + seed) % 13) / 4.0 - 1.5;
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < N; k++)
                s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    uint64_t h = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            uint64_t bits;
            memcpy(&bits, &c[i][j], sizeof bits);
            h = mix(h, bits);
        }
    return h;
}

static uint32_t values[SORT_COUNT];

static int compare_u32(const void *p, const void *q) {
    uint32_t x = *(const uint32_t *)p, y = *(const uint32_t *)q;
    return (x > y) - (x < y);
}

static uint64_t sort(uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < SORT_COUNT; i++) {
        x = x * 1664525u + 1013904223u;
        values[i] = x >> 8;
    }
    qsort(values, SORT_COUNT, sizeof values[0], compare_u32);
    uint64_t h = 0;
    for (int i = 0; i < SORT_COUNT; i += 7)
        h = mix(h, values[i]);
    for (int i = 1; i < SORT_COUNT; i++)
        CHECK(values[i - 1] <= values[i]);
    return h;
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 40;
    CHECK(iterations >= 0);
    uint64_t h = 0;
    for (long it = 0; it < iterations; it++) {
        h = mix(h, hash_loop((uint64_t)it));
        h = mix(h, sieve());
        h = mix(h, matmul((uint32_t)it));
        h = mix(h, sort((uint32_t)it));
    }
    printf("bench_cpu on %s: %ld iterations, checksum %016llx\n", GUEST_ARCH, iterations,
           (unsigned long long)h);
    return guest_failures ? 1 : 0;
}
