/* futex_ops: the futex syscall itself, operation by operation (what glibc's locks and
 * condition variables are built on).
 *
 * - FUTEX_WAIT: EAGAIN when the word differs; ETIMEDOUT after a relative timeout; EINVAL for
 *   an unaligned address or a bad timespec; ENOSYS for FUTEX_CLOCK_REALTIME (only the
 *   bitset wait takes it);
 * - FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC and CLOCK_REALTIME deadline already
 *   past: ETIMEDOUT at once; bitset 0: EINVAL;
 * - FUTEX_WAKE with waiters: the count woken, at most the number asked;
 * - FUTEX_WAKE_BITSET wakes only waiters whose bitset meets it;
 * - FUTEX_REQUEUE and FUTEX_CMP_REQUEUE (EAGAIN on a mismatch): woken + requeued, and the
 *   requeued waiters are then woken from the second word;
 * - FUTEX_WAKE_OP: the operation on the second word and the comparison of its old value;
 * - a wait interrupted by a handler: EINTR without SA_RESTART; with SA_RESTART the wait goes
 *   on and a later wake ends it normally.
 * Waiters are threads; "waiting" is known from a counter each sets before it waits (and the
 * waker retries its wake until the count it expects has been woken). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

/* guest-cflags: -pthread */

static long futex(void *addr, int op, uint32_t val, const void *timeout, void *addr2, uint32_t val3) {
    return syscall(SYS_futex, addr, op, val, timeout, addr2, val3);
}

static const char *err(long rc) {
    if (rc >= 0)
        return "ok";
    switch (errno) {
    case EAGAIN:
        return "EAGAIN";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EINVAL:
        return "EINVAL";
    case ENOSYS:
        return "ENOSYS";
    case EINTR:
        return "EINTR";
    }
    return "other";
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static _Alignas(8) uint32_t word1, word2;
static atomic_int entered, finished;

struct waiter {
    uint32_t *addr;
    uint32_t val;
    uint32_t bitset;
    long rc;
    int err;
    int done;
};

static void *wait_thread(void *arg) {
    struct waiter *w = arg;
    atomic_fetch_add(&entered, 1);
    w->rc = futex(w->addr, FUTEX_WAIT_BITSET_PRIVATE, w->val, NULL, NULL, w->bitset);
    w->err = errno;
    w->done = 1;
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void start_waiters(pthread_t *t, struct waiter *w, int n, uint32_t *addr, uint32_t bitset) {
    atomic_store(&entered, 0);
    atomic_store(&finished, 0);
    for (int i = 0; i < n; i++) {
        w[i] = (struct waiter){addr, *addr, bitset, 0, 0, 0};
        pthread_create(&t[i], NULL, wait_thread, &w[i]);
    }
    while (atomic_load(&entered) < n)
        sleep_ms(1);
    sleep_ms(50); /* entered the kernel's wait, in all likelihood */
}

/* Wake until `want` waiters on addr are woken in total; give the sum of the answers. */
static long wake_all(uint32_t *addr, int want) {
    long total = 0;
    while (total < want) {
        long n = futex(addr, FUTEX_WAKE_PRIVATE, want - total, NULL, NULL, 0);
        if (n > 0)
            total += n;
        else
            sleep_ms(5);
    }
    return total;
}

static void join_all(pthread_t *t, int n) {
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static void basics(void) {
    printf("wait:\n");
    word1 = 1;
    long rc = futex(&word1, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    printf("  word differs                 %s\n", err(rc));
    struct timespec rel = {0, 20000000};
    word1 = 0;
    rc = futex(&word1, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
    printf("  relative 20 ms timeout       %s\n", err(rc));
    rc = futex((char *)&word1 + 1, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
    printf("  unaligned address            %s\n", err(rc));
    struct timespec bad = {0, 1000000000};
    rc = futex(&word1, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0);
    printf("  tv_nsec = 1e9                %s\n", err(rc));
    rc = futex(&word1, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &rel, NULL, 0);
    printf("  FUTEX_WAIT|CLOCK_REALTIME    %s\n", err(rc));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    rc = futex(&word1, FUTEX_WAIT_BITSET_PRIVATE, 0, &now, NULL, FUTEX_BITSET_MATCH_ANY);
    printf("  bitset, monotonic deadline   %s\n", err(rc));
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec = (now.tv_nsec + 5000000) % 1000000000;
    now.tv_sec += now.tv_nsec < 5000000;
    rc = futex(&word1, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &now, NULL,
               FUTEX_BITSET_MATCH_ANY);
    printf("  bitset, realtime deadline    %s\n", err(rc));
    rc = futex(&word1, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0);
    printf("  bitset 0                     %s\n", err(rc));
    rc = futex(&word1, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    printf("  wake with no waiter          %ld\n", rc);
}

static void wakes(void) {
    printf("wake:\n");
    pthread_t t[4];
    struct waiter w[4];
    word1 = 0;
    start_waiters(t, w, 4, &word1, FUTEX_BITSET_MATCH_ANY);
    long n = futex(&word1, FUTEX_WAKE_PRIVATE, 3, NULL, NULL, 0);
    while (atomic_load(&finished) < 3)
        sleep_ms(1);
    printf("  wake 3 of 4: answered %ld, finished %d\n", n, atomic_load(&finished));
    n = wake_all(&word1, 1);
    join_all(t, 4);
    printf("  then the last one: %ld, results %s %s %s %s\n", n, err(w[0].rc), err(w[1].rc),
           err(w[2].rc), err(w[3].rc));

    struct waiter b[2];
    pthread_t bt[2];
    atomic_store(&entered, 0);
    atomic_store(&finished, 0);
    b[0] = (struct waiter){&word1, 0, 1, 0, 0, 0};
    b[1] = (struct waiter){&word1, 0, 2, 0, 0, 0};
    for (int i = 0; i < 2; i++)
        pthread_create(&bt[i], NULL, wait_thread, &b[i]);
    while (atomic_load(&entered) < 2)
        sleep_ms(1);
    sleep_ms(50);
    long got = 0;
    while (got < 1) {
        got = futex(&word1, FUTEX_WAKE_BITSET_PRIVATE, 10, NULL, NULL, 2);
        if (!got)
            sleep_ms(5);
    }
    while (!b[1].done)
        sleep_ms(1);
    printf("  wake bitset 2: answered %ld, woke bitset-1 waiter %s, bitset-2 waiter %s\n", got,
           b[0].done ? "yes" : "no", b[1].done ? "yes" : "no");
    long more = 0;
    while (more < 1) {
        more = futex(&word1, FUTEX_WAKE_BITSET_PRIVATE, 10, NULL, NULL, 1);
        if (!more)
            sleep_ms(5);
    }
    join_all(bt, 2);
    printf("  wake bitset 1: answered %ld\n", more);
}

static void requeues(void) {
    printf("requeue:\n");
    pthread_t t[4];
    struct waiter w[4];
    word1 = 0;
    word2 = 0;
    start_waiters(t, w, 4, &word1, FUTEX_BITSET_MATCH_ANY);
    long rc = futex(&word1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2L, &word2, 5);
    printf("  cmp_requeue with the wrong value: %s\n", err(rc));
    long n = futex(&word1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2L, &word2, 0);
    while (atomic_load(&finished) < 1)
        sleep_ms(1);
    printf("  cmp_requeue wake 1 move 2: answered %ld\n", n);
    long on2 = wake_all(&word2, 2);
    while (atomic_load(&finished) < 3)
        sleep_ms(1);
    printf("  woken from the second word: %ld\n", on2);
    n = futex(&word1, FUTEX_REQUEUE_PRIVATE, 0, (void *)1L, &word2, 0);
    printf("  requeue wake 0 move 1: answered %ld\n", n);
    on2 = wake_all(&word2, 1);
    join_all(t, 4);
    printf("  woken from the second word: %ld; finished %d\n", on2, atomic_load(&finished));
}

static void wake_ops(void) {
    printf("wake_op:\n");
    struct {
        const char *name;
        int op, oparg, cmp, cmparg;
        uint32_t start;
    } cases[] = {
        {"set 5, old == 3", FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 3, 3},
        {"add 2, old != 3", FUTEX_OP_ADD, 2, FUTEX_OP_CMP_NE, 3, 3},
        {"or 0x30, old < 1", FUTEX_OP_OR, 0x30, FUTEX_OP_CMP_LT, 1, 0},
        {"andn 1, old <= 0", FUTEX_OP_ANDN, 1, FUTEX_OP_CMP_LE, 0, 0xff},
        {"xor 0xf, old > -1", FUTEX_OP_XOR, 0xf, FUTEX_OP_CMP_GT, -1, 0xffffffff},
        {"add -1, old >= 7", FUTEX_OP_ADD, -1, FUTEX_OP_CMP_GE, 7, 7},
        {"set 1<<4, old == 0", FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 4, FUTEX_OP_CMP_EQ, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pthread_t t[1];
        struct waiter w[1];
        uint32_t *target = &word2;
        word1 = 0;
        word2 = cases[i].start;
        /* one waiter on the second word: woken when the comparison holds */
        start_waiters(t, w, 1, &word2, FUTEX_BITSET_MATCH_ANY);
        long n = futex(&word1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, target,
                       FUTEX_OP(cases[i].op, cases[i].oparg, cases[i].cmp, cases[i].cmparg));
        uint32_t after = word2;
        if (n == 0)
            wake_all(&word2, 1);
        join_all(t, 1);
        printf("  %-22s answered %ld, word %#x\n", cases[i].name, n, after);
    }
    word2 = 0;
    long rc = futex(&word1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &word2, 7u << 28);
    printf("  unknown operation: %s\n", err(rc));
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void interrupts(void) {
    printf("signals:\n");
    for (int restart = 0; restart < 2; restart++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_flags = restart ? SA_RESTART : 0;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        pthread_t t[1];
        struct waiter w[1];
        word1 = 0;
        handled = 0;
        start_waiters(t, w, 1, &word1, FUTEX_BITSET_MATCH_ANY);
        pthread_kill(t[0], SIGUSR1);
        while (!handled)
            sleep_ms(1);
        sleep_ms(50);
        int done_after_signal = w[0].done;
        if (!w[0].done)
            wake_all(&word1, 1);
        join_all(t, 1);
        printf("  %s: handler ran %d, wait ended by the signal %s, result %s\n",
               restart ? "SA_RESTART   " : "no SA_RESTART", (int)handled,
               done_after_signal ? "yes" : "no",
               w[0].rc < 0 ? (w[0].err == EINTR ? "EINTR" : "?") : "woken");
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("futex_ops on %s\n", GUEST_ARCH);
    basics();
    wakes();
    requeues();
    wake_ops();
    interrupts();
    return guest_exit_status("futex_ops");
}
