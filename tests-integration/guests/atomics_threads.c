/* atomics_threads: C11 atomics and POSIX threads; only totals are printed.
 *
 * Four threads each: increment a shared counter with atomic_fetch_add, another
 * with a compare-and-swap loop (strong and weak), a third under a mutex, hand
 * tokens around with atomic_exchange, do 8/16/32-bit atomic ops (LR/SC loops
 * on RISC-V), and keep a thread-local (__thread) tally that the thread returns
 * through pthread_join. Barriers separate the phases; a condition variable
 * drives a bounded producer/consumer queue; pthread_once runs once. Thread
 * interleaving varies from run to run, but every total printed does not. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "guest.h"

/* guest-cflags: -pthread */

#define NTHREADS 4
#define ITERS 20000
#define QUEUE_ITEMS 5000
#define QUEUE_SIZE 8

static atomic_long fetch_add_counter;
static atomic_long cas_strong_counter;
static atomic_long cas_weak_counter;
static long mutex_counter;
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_int exchange_slot; /* one token circulates; exchanges conserve it */
static atomic_long exchange_sum;

static _Atomic uint8_t byte_counter;   /* wraps: ITERS * NTHREADS mod 256 */
static _Atomic uint16_t half_counter;  /* wraps mod 65536 */
static _Atomic uint32_t word_bits;     /* fetch_or / fetch_and */
static atomic_ulong xor_acc;

static pthread_barrier_t barrier;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int once_runs;

static __thread long tls_tally = 1000; /* every thread starts from the initializer */
static __thread int tls_id;

/* A bounded queue: producers = even threads, consumers = odd threads. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    long items[QUEUE_SIZE];
    int head, count;
    long produced_sum, consumed_sum;
    int consumed;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void once_routine(void) { atomic_fetch_add(&once_runs, 1); }

static void produce(long value) {
    pthread_mutex_lock(&queue.lock);
    while (queue.count == QUEUE_SIZE)
        pthread_cond_wait(&queue.not_full, &queue.lock);
    queue.items[(queue.head + queue.count) % QUEUE_SIZE] = value;
    queue.count++;
    queue.produced_sum += value;
    pthread_cond_signal(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
}

static long consume(void) {
    pthread_mutex_lock(&queue.lock);
    while (queue.count == 0)
        pthread_cond_wait(&queue.not_empty, &queue.lock);
    long value = queue.items[queue.head];
    queue.head = (queue.head + 1) % QUEUE_SIZE;
    queue.count--;
    queue.consumed_sum += value;
    queue.consumed++;
    pthread_cond_signal(&queue.not_full);
    pthread_mutex_unlock(&queue.lock);
    return value;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    tls_id = id;
    CHECK(tls_tally == 1000);
    pthread_once(&once, once_routine);
    pthread_barrier_wait(&barrier);

    /* Phase 1: counters. */
    for (int i = 0; i < ITERS; i++) {
        atomic_fetch_add_explicit(&fetch_add_counter, 1, memory_order_relaxed);

        long old = atomic_load(&cas_strong_counter);
        while (!atomic_compare_exchange_strong(&cas_strong_counter, &old, old + 2))
            ;
        old = atomic_load_explicit(&cas_weak_counter, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&cas_weak_counter, &old, old + 3,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed))
            ;

        pthread_mutex_lock(&counter_lock);
        mutex_counter += 5;
        pthread_mutex_unlock(&counter_lock);

        atomic_fetch_add(&byte_counter, 1);
        atomic_fetch_add(&half_counter, 3);
        atomic_fetch_xor(&xor_acc, (unsigned long)(i + 1) * 0x9e3779b97f4a7c15ul * (unsigned long)(id + 1));
        tls_tally += 1;
    }
    atomic_fetch_or(&word_bits, 1u << (id * 8));
    atomic_fetch_or(&word_bits, 0x80u << (id * 8));
    atomic_fetch_and(&word_bits, ~(0x80u << (id * 8)));
    pthread_barrier_wait(&barrier);

    /* Phase 2: a token and values swapped around; the multiset is conserved. */
    for (int i = 0; i < ITERS / 4; i++) {
        int mine = id * 100000 + i;
        int got = atomic_exchange(&exchange_slot, mine);
        atomic_fetch_add(&exchange_sum, got);
        atomic_fetch_sub(&exchange_sum, mine);
    }
    pthread_barrier_wait(&barrier);

    /* Phase 3: producer/consumer over a condition variable. */
    if (id % 2 == 0) {
        for (long v = 1; v <= QUEUE_ITEMS; v++)
            produce(v * (id + 1));
    } else {
        for (int n = 0; n < QUEUE_ITEMS; n++)
            tls_tally += consume() % 7;
    }
    CHECK(tls_id == id);
    return (void *)(intptr_t)tls_tally;
}

int main(void) {
    pthread_t threads[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i) == 0);

    long tls_sum = 0, consumer_tally = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        CHECK(pthread_join(threads[i], &ret) == 0);
        long tally = (long)(intptr_t)ret;
        tls_sum += tally;
        if (i % 2)
            consumer_tally += tally - 1000 - ITERS;
    }
    pthread_barrier_destroy(&barrier);

    /* The last token left in the slot is the one nobody took back. */
    long exchange_balance = atomic_load(&exchange_sum) + atomic_load(&exchange_slot);

    printf("threads: %d\n", NTHREADS);
    printf("fetch_add: %ld\n", atomic_load(&fetch_add_counter));
    printf("cas strong: %ld\n", atomic_load(&cas_strong_counter));
    printf("cas weak: %ld\n", atomic_load(&cas_weak_counter));
    printf("mutex: %ld\n", mutex_counter);
    printf("u8 counter: %u\n", (unsigned)atomic_load(&byte_counter));
    printf("u16 counter: %u\n", (unsigned)atomic_load(&half_counter));
    printf("word bits: %08x\n", (unsigned)atomic_load(&word_bits));
    printf("xor: %016lx\n", (unsigned long)atomic_load(&xor_acc));
    printf("exchange balance: %ld\n", exchange_balance);
    printf("once: %d\n", atomic_load(&once_runs));
    printf("queue: produced %ld consumed %ld items %d\n", queue.produced_sum,
           queue.consumed_sum, queue.consumed);
    printf("tls: main %ld, threads %ld, consumers' share %ld\n", tls_tally, tls_sum,
           consumer_tally);

    CHECK(atomic_load(&fetch_add_counter) == (long)NTHREADS * ITERS);
    CHECK(atomic_load(&cas_strong_counter) == 2L * NTHREADS * ITERS);
    CHECK(atomic_load(&cas_weak_counter) == 3L * NTHREADS * ITERS);
    CHECK(mutex_counter == 5L * NTHREADS * ITERS);
    CHECK(atomic_load(&byte_counter) == (uint8_t)(NTHREADS * ITERS));
    CHECK(atomic_load(&half_counter) == (uint16_t)(3 * NTHREADS * ITERS));
    CHECK(atomic_load(&word_bits) == 0x01010101u);
    CHECK(exchange_balance == 0);
    CHECK(atomic_load(&once_runs) == 1);
    CHECK(queue.produced_sum == queue.consumed_sum);
    CHECK(tls_tally == 1000);
    return guest_exit_status("atomics_threads");
}
