/* threads_signals: how threads end, and which thread a signal goes to.
 *
 * Each case runs in a forked child (so that ending a process is what is checked) and the
 * parent prints the child's status:
 * - the main thread calls pthread_exit while a worker runs: the process lives on, the worker
 *   prints, and the process exits 0 when the last thread ends;
 * - exit(7) in a worker while main waits in pthread_join: the process exits 7;
 * - a worker writes to address 8 (no handler): the process dies by SIGSEGV;
 * - a worker calls abort(): the process dies by SIGABRT.
 * In the process itself:
 * - pthread_join returns what each worker returned (CLONE_CHILD_CLEARTID and a futex wake);
 * - a process-directed signal (kill) that the main thread blocks runs its handler in the
 *   worker that does not block it;
 * - pthread_kill runs the handler in the thread named;
 * - a thread blocked in sigwait takes a signal sent to the process;
 * - a process-directed signal every thread blocks stays pending, for each of them, until one
 *   unblocks it; a thread-directed one is pending only for its thread;
 * - pthread_cancel ends a worker blocked in read() on a pipe and one in nanosleep (glibc
 *   sends SIGCANCEL, which must interrupt those calls). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

/* guest-cflags: -pthread */

static volatile pid_t handler_tid;
static volatile sig_atomic_t handled;
static pid_t main_tid;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void on_usr(int sig) {
    (void)sig;
    handler_tid = gettid_();
    handled++;
}

static void set_handler(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static void block(int sig, int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(how, &set, NULL);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("  %-46s exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("  %-46s killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("  %-46s status %#x\n", what, status);
}

static int run_child(void (*body)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        body();
        _exit(99);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* -- how processes with threads end ---------------------------------------------------- */
static void *late_worker(void *arg) {
    (void)arg;
    sleep_ms(100);
    printf("  worker: still running after main's pthread_exit\n");
    fflush(stdout);
    return NULL;
}

static void main_pthread_exit(void) {
    pthread_t t;
    pthread_create(&t, NULL, late_worker, NULL);
    pthread_exit(NULL);
}

static void *exit7(void *arg) {
    (void)arg;
    sleep_ms(20);
    exit(7);
}

static void worker_exits(void) {
    pthread_t t;
    pthread_create(&t, NULL, exit7, NULL);
    pthread_join(t, NULL);
    _exit(1);
}

static void *crash(void *arg) {
    (void)arg;
    *(volatile int *)OPAQUE((uintptr_t)8) = 1;
    return NULL;
}

static void worker_crashes(void) {
    signal(SIGSEGV, SIG_DFL);
    pthread_t t;
    pthread_create(&t, NULL, crash, NULL);
    pthread_join(t, NULL);
    _exit(1);
}

static void *aborts(void *arg) {
    (void)arg;
    abort();
}

static void worker_aborts(void) {
    pthread_t t;
    pthread_create(&t, NULL, aborts, NULL);
    pthread_join(t, NULL);
    _exit(1);
}

/* -- which thread a signal goes to ------------------------------------------------------- */
static volatile sig_atomic_t stop_waiting;
static volatile pid_t worker_tid;

static void *waiting_worker(void *arg) {
    (void)arg;
    worker_tid = gettid_();
    while (!stop_waiting)
        sleep_ms(2);
    return (void *)(long)worker_tid;
}

static void *sigwaiter(void *arg) {
    sigset_t *set = arg;
    int sig = 0;
    sigwait(set, &sig);
    return (void *)(long)sig;
}

static void *pending_checker(void *arg) {
    (void)arg;
    sigset_t pending;
    sigpending(&pending);
    return (void *)(long)(sigismember(&pending, SIGUSR1) * 1 + sigismember(&pending, SIGUSR2) * 2);
}

static int pipe_fds[2];

static void *reader(void *arg) {
    (void)arg;
    char c;
    read(pipe_fds[0], &c, 1);
    return (void *)1L;
}

static void *sleeper(void *arg) {
    (void)arg;
    sleep(30);
    return (void *)1L;
}

static void targets(void) {
    printf("targets:\n");
    set_handler(SIGUSR1);
    set_handler(SIGUSR2);
    pthread_t t;
    stop_waiting = 0;
    worker_tid = 0;
    pthread_create(&t, NULL, waiting_worker, NULL);
    while (!worker_tid)
        sleep_ms(1);

    block(SIGUSR1, SIG_BLOCK);
    handled = 0;
    kill(getpid(), SIGUSR1);
    while (!handled)
        sleep_ms(1);
    printf("  kill, blocked in main: handled in the worker %s\n",
           handler_tid == worker_tid ? "yes" : "no");
    block(SIGUSR1, SIG_UNBLOCK);

    handled = 0;
    pthread_kill(t, SIGUSR2);
    while (!handled)
        sleep_ms(1);
    printf("  pthread_kill: handled in that thread %s\n", handler_tid == worker_tid ? "yes" : "no");
    handled = 0;
    raise(SIGUSR2);
    printf("  raise: handled at once in main %s\n",
           handled == 1 && handler_tid == main_tid ? "yes" : "no");

    stop_waiting = 1;
    void *ret;
    pthread_join(t, &ret);
    printf("  pthread_join gave the worker's result: %s\n",
           (pid_t)(long)ret == worker_tid ? "yes" : "no");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_create(&t, NULL, sigwaiter, &set);
    sleep_ms(20);
    kill(getpid(), SIGTERM);
    pthread_join(t, &ret);
    printf("  sigwait in a thread took: %s\n", (long)ret == SIGTERM ? "SIGTERM" : "?");

    block(SIGUSR1, SIG_BLOCK);
    block(SIGUSR2, SIG_BLOCK);
    kill(getpid(), SIGUSR1);
    pthread_kill(pthread_self(), SIGUSR2);
    pthread_create(&t, NULL, pending_checker, NULL);
    pthread_join(t, &ret);
    sigset_t pending;
    sigpending(&pending);
    printf("  pending: in another thread %s%s, in main %s%s\n", (long)ret & 1 ? "USR1 " : "",
           (long)ret & 2 ? "USR2" : "", sigismember(&pending, SIGUSR1) ? "USR1 " : "",
           sigismember(&pending, SIGUSR2) ? "USR2" : "");
    handled = 0;
    block(SIGUSR1, SIG_UNBLOCK);
    block(SIGUSR2, SIG_UNBLOCK);
    printf("  unblocked: %d handlers ran\n", (int)handled);

    CHECK(pipe(pipe_fds) == 0);
    pthread_t r, s;
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&s, NULL, sleeper, NULL);
    sleep_ms(50);
    pthread_cancel(r);
    pthread_cancel(s);
    void *rr, *sr;
    pthread_join(r, &rr);
    pthread_join(s, &sr);
    printf("  pthread_cancel: reader %s, sleeper %s\n",
           rr == PTHREAD_CANCELED ? "canceled" : "returned",
           sr == PTHREAD_CANCELED ? "canceled" : "returned");
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_tid = gettid_();
    printf("threads_signals on %s\n", GUEST_ARCH);
    printf("ends:\n");
    describe("main pthread_exit, worker ends last", run_child(main_pthread_exit));
    describe("exit(7) in a worker", run_child(worker_exits));
    describe("a worker writes to address 8", run_child(worker_crashes));
    describe("abort() in a worker", run_child(worker_aborts));
    targets();
    return guest_exit_status("threads_signals");
}
