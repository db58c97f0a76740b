/* malloc_churn: many malloc/calloc/realloc/free of varying sizes, with checksums.
 *
 * A fixed-seed generator picks sizes from 1 byte to 2 MiB, so that glibc's
 * allocator uses the heap (brk) for small blocks and mmap for large ones
 * (above its mmap threshold), and realloc both grows in place, moves, and
 * shrinks. Every block is filled with a pattern derived from its slot and
 * generation, and verified before it is resized or freed; realloc must keep
 * the old contents, calloc must return zeros. Only counts and checksums are
 * printed, never an address. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest.h"

#define SLOTS 128
#define ROUNDS 3000

static uint64_t rng_state = UINT64_C(0x853c49e6748fea9b);

static uint64_t next_random(void) {
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static size_t random_size(void) {
    uint64_t r = next_random();
    switch (r % 16) {
    case 0:
        return 128 * 1024 + (size_t)(r >> 8) % (2 * 1024 * 1024); /* mmap territory */
    case 1:
    case 2:
        return 4096 + (size_t)(r >> 8) % 65536;
    default:
        return 1 + (size_t)(r >> 8) % 512;
    }
}

struct slot {
    unsigned char *p;
    size_t size;
    uint32_t seed;
};

static struct slot slots[SLOTS];
static uint64_t checksum = UINT64_C(14695981039346656037);
static unsigned long n_malloc, n_calloc, n_realloc, n_free, n_large, n_misaligned;
static unsigned long n_corrupt;

static unsigned char pattern(uint32_t seed, size_t i) {
    return (unsigned char)((seed * 2654435761u) >> 24 ^ (uint32_t)(i * 131u + (i >> 8)));
}

/* The bytes of a block that are filled and checked: all of a small block; the
 * first and last 256 bytes and every 509th byte of a large one (that is enough
 * to catch a lost or moved page, and keeps the guest quick to emulate). */
static size_t next_index(size_t i, size_t size) {
    if (size <= 1024 || i < 255 || i + 257 >= size)
        return i + 1;
    size_t next = i + 509;
    return next + 256 < size ? next : size - 256;
}

static void fill(struct slot *s) {
    for (size_t i = 0; i < s->size; i = next_index(i, s->size))
        s->p[i] = pattern(s->seed, i);
}

/* Verify the bytes below n (sampled as for a block of s->size) and fold them
 * into the checksum. */
static void verify(const struct slot *s, size_t n) {
    for (size_t i = 0; i < n; i = next_index(i, s->size)) {
        if (s->p[i] != pattern(s->seed, i)) {
            n_corrupt++;
            return;
        }
        checksum ^= s->p[i];
        checksum *= UINT64_C(1099511628211);
    }
    checksum ^= n;
    checksum *= UINT64_C(1099511628211);
}

static void note_block(const void *p, size_t size) {
    if ((uintptr_t)p % 16 != 0)
        n_misaligned++;
    if (size >= 128 * 1024)
        n_large++;
}

int main(void) {
    printf("malloc_churn on %s\n", GUEST_ARCH);
    /* On a fresh heap, small blocks come from brk: the break moves up. */
    char *start = sbrk(0);
    void *blocks[64];
    for (int i = 0; i < 64; i++)
        blocks[i] = malloc(100 * 1000);
    char *grown = sbrk(0);
    for (int i = 63; i >= 0; i--)
        free(blocks[i]);
    printf("brk grew: %s\n", grown > start ? "yes" : "no");

    for (uint32_t round = 0; round < ROUNDS; round++) {
        uint64_t r = next_random();
        struct slot *s = &slots[r % SLOTS];
        uint32_t action = (uint32_t)(r >> 32) % 8;
        if (s->p == NULL) {
            s->size = random_size();
            s->seed = round;
            if (action < 2) {
                s->p = calloc(1, s->size);
                n_calloc++;
                CHECK(s->p != NULL);
                for (size_t i = 0; i < s->size; i = next_index(i, s->size))
                    if (s->p[i]) {
                        n_corrupt++;
                        break;
                    }
            } else {
                s->p = malloc(s->size);
                n_malloc++;
                CHECK(s->p != NULL);
            }
            note_block(s->p, s->size);
            fill(s);
        } else if (action < 4) {
            size_t new_size = random_size();
            size_t keep = new_size < s->size ? new_size : s->size;
            verify(s, s->size);
            unsigned char *q = realloc(s->p, new_size);
            CHECK(q != NULL);
            n_realloc++;
            s->p = q;
            verify(s, keep); /* the old contents survived */
            s->size = new_size;
            note_block(q, new_size);
            fill(s);
        } else {
            verify(s, s->size);
            free(s->p);
            n_free++;
            s->p = NULL;
        }
    }
    size_t live = 0, live_bytes = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p) {
            verify(&slots[i], slots[i].size);
            live++;
            live_bytes += slots[i].size;
            free(slots[i].p);
            n_free++;
        }
    }

    printf("malloc %lu calloc %lu realloc %lu free %lu large %lu\n", n_malloc, n_calloc,
           n_realloc, n_free, n_large);
    printf("live at end: %zu blocks, %zu bytes\n", live, live_bytes);
    printf("misaligned: %lu corrupt: %lu\n", n_misaligned, n_corrupt);
    printf("checksum: %016llx\n", (unsigned long long)checksum);
    CHECK(n_misaligned == 0);
    CHECK(n_corrupt == 0);
    CHECK(grown > start);
    return guest_exit_status("malloc_churn");
}
