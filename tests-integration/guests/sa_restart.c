/* sa_restart: a blocking syscall interrupted by a signal handler.
 *
 * A forked helper sends SIGUSR1 to the parent while the parent is blocked, then (a little
 * later) does what the parent waits for. With SA_RESTART the call is restarted after the
 * handler and completes; without it the call fails with EINTR:
 * - read() from an empty pipe;
 * - waitpid() for a child that has not exited;
 * - sem_wait-like futex waits are left to glibc; nanosleep is never restarted (EINTR
 *   either way, with the time left);
 * - a signal that is ignored, or blocked, does not interrupt the read at all;
 * - sigtimedwait is cut short by a handled signal outside its set (EINTR). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void set_handler(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A helper process: after 100 ms a signal to the parent, after 200 ms one byte into the
 * pipe (when fd >= 0); then it exits with status 5. */
static pid_t helper(int sig, int fd) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(100);
        if (sig)
            kill(parent, sig);
        sleep_ms(100);
        if (fd >= 0)
            write(fd, "x", 1);
        _exit(5);
    }
    return pid;
}

static void reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

static void read_case(const char *what, int flags, int sig) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    handled = 0;
    pid_t pid = helper(sig, fds[1]);
    char c = 0;
    errno = 0;
    ssize_t n = read(fds[0], &c, 1);
    printf("  read, %-34s %zd %s, handler ran %d\n", what, n,
           n < 0 ? (errno == EINTR ? "EINTR" : "?") : (c == 'x' ? "(the byte)" : "?"),
           (int)handled);
    (void)flags;
    reap(pid);
    close(fds[0]);
    close(fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("sa_restart on %s\n", GUEST_ARCH);

    printf("read from a pipe:\n");
    set_handler(SIGUSR1, on_usr1, SA_RESTART);
    read_case("handler with SA_RESTART:", SA_RESTART, SIGUSR1);
    set_handler(SIGUSR1, on_usr1, 0);
    read_case("handler without SA_RESTART:", 0, SIGUSR1);
    set_handler(SIGUSR1, SIG_IGN, 0);
    read_case("signal ignored:", 0, SIGUSR1);
    set_handler(SIGUSR1, on_usr1, 0);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    read_case("signal blocked:", 0, SIGUSR1);
    handled = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("  the blocked one after unblocking: handler ran %d\n", (int)handled);
    set_handler(SIGCHLD, on_usr1, 0);
    signal(SIGCHLD, SIG_DFL); /* default: ignored, must not interrupt */
    read_case("SIGCHLD (default: ignore):", 0, SIGCHLD);

    printf("waitpid:\n");
    int status = 0;
    set_handler(SIGUSR1, on_usr1, SA_RESTART);
    handled = 0;
    pid_t pid = helper(SIGUSR1, -1);
    errno = 0;
    pid_t got = waitpid(pid, &status, 0);
    printf("  handler with SA_RESTART:    %s, status %d, handler ran %d\n",
           got == pid ? "the child" : "?", WEXITSTATUS(status), (int)handled);
    set_handler(SIGUSR1, on_usr1, 0);
    handled = 0;
    pid = helper(SIGUSR1, -1);
    errno = 0;
    got = waitpid(pid, &status, 0);
    printf("  handler without SA_RESTART: %d %s, handler ran %d\n", (int)got,
           errno == EINTR ? "EINTR" : "?", (int)handled);
    reap(pid);

    printf("nanosleep:\n");
    set_handler(SIGUSR1, on_usr1, SA_RESTART);
    handled = 0;
    pid = helper(SIGUSR1, -1);
    struct timespec req = {2, 0}, rem = {0, 0};
    errno = 0;
    int rc = nanosleep(&req, &rem);
    printf("  with SA_RESTART: %d %s, time left over a second %s, handler ran %d\n", rc,
           errno == EINTR ? "EINTR" : "?", rem.tv_sec >= 1 ? "yes" : "no", (int)handled);
    reap(pid);

    printf("sigtimedwait:\n");
    set_handler(SIGUSR1, on_usr1, SA_RESTART);
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGUSR2);
    sigprocmask(SIG_BLOCK, &wanted, &old);
    handled = 0;
    pid = helper(SIGUSR1, -1);
    struct timespec two = {2, 0};
    errno = 0;
    rc = sigtimedwait(&wanted, NULL, &two);
    printf("  another signal's handler: %d %s, handler ran %d\n", rc,
           errno == EINTR ? "EINTR" : "?", (int)handled);
    reap(pid);
    struct timespec short_wait = {0, 10000000};
    errno = 0;
    rc = sigtimedwait(&wanted, NULL, &short_wait);
    printf("  nothing comes: %d %s\n", rc, errno == EAGAIN ? "EAGAIN" : "?");
    sigprocmask(SIG_SETMASK, &old, NULL);
    return guest_exit_status("sa_restart");
}
