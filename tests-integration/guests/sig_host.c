/* sig_host: signals that come from outside the process.
 *
 *     sig_host                 self-contained checks (below)
 *     sig_host wait SIG...     for each named signal (INT, TERM, HUP, USR1, USR2, QUIT):
 *                              print "ready SIG", then compute (no syscalls) until that
 *                              signal's handler ran; print what its siginfo said
 *     sig_host default         print "ready", compute forever: the signal sent ends it
 *     sig_host blocked         block SIGINT, print "ready", compute until SIGINT is
 *                              pending, then unblock it: the handler runs
 *     sig_host segv|abort|ill  die: a write to address 16, abort(), an illegal instruction
 *
 * The driving test sends the signals to the emulator (or qemu) process, its child: the
 * handler sees SI_USER and si_pid == getppid().
 *
 * Self-contained checks: kill(getpid(), SIGINT) caught; SIGCHLD with CLD_EXITED and the
 * child's pid and status while computing; SIGPIPE caught (write answers EPIPE) and, in a
 * child, fatal by default (the parent sees WTERMSIG == SIGPIPE); kill(0, SIGUSR1) in a new
 * process group reaches the sender (caught, once) and its child (killed); SIGTERM and
 * SIGQUIT by default kill a child that computes without syscalls; SIGSTOP/SIGCONT seen by
 * waitpid with WUNTRACED/WCONTINUED. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

static volatile sig_atomic_t got_signo, got_code, got_from_parent, got_from_self, got_count;
static volatile sig_atomic_t chld_code, chld_status, chld_count;
/* the handler records the sender; the parent compares after the fact (a child can exit, and
 * its SIGCHLD arrive, before fork() has returned its pid to the parent) */
static volatile pid_t chld_pid;
static volatile unsigned long spin_sink;

static const struct {
    const char *name;
    int signo;
} NAMES[] = {{"INT", SIGINT},   {"TERM", SIGTERM}, {"HUP", SIGHUP},
             {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"QUIT", SIGQUIT}};

static int signo_of(const char *name) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (strcmp(NAMES[i].name, name) == 0)
            return NAMES[i].signo;
    return 0;
}

static void on_signal(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    got_signo = sig;
    got_code = info->si_code;
    got_from_parent = info->si_pid == getppid();
    got_from_self = info->si_pid == getpid();
    got_count++;
}

static void on_sigchld(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    chld_code = info->si_code;
    chld_status = info->si_status;
    chld_pid = info->si_pid;
    chld_count++;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

/* Compute without syscalls until *flag becomes nonzero (the emulator must notice a host
 * signal while guest code runs). */
static void spin_until(volatile sig_atomic_t *flag) {
    unsigned long x = 1;
    while (!*flag)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    spin_sink = x;
}

static void spin_forever(void) {
    static volatile sig_atomic_t never;
    spin_until(&never);
}

static const char *code_name(int code) {
    switch (code) {
    case SI_USER:
        return "SI_USER";
    case SI_KERNEL:
        return "SI_KERNEL";
    case SI_QUEUE:
        return "SI_QUEUE";
    case SI_TKILL:
        return "SI_TKILL";
    }
    return "other";
}

static int wait_mode(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        int sig = signo_of(argv[i]);
        CHECK(sig != 0);
        handle(sig, on_signal, 0);
    }
    for (int i = 2; i < argc; i++) {
        int before = got_count;
        printf("ready %s\n", argv[i]);
        volatile sig_atomic_t *count = &got_count;
        while (*count == before)
            spin_sink++;
        printf("got SIG%s: %s, code %s, from the parent: %s\n", argv[i],
               got_signo == signo_of(argv[i]) ? "yes" : "no", code_name(got_code),
               got_from_parent ? "yes" : "no");
    }
    return guest_exit_status("sig_host");
}

static int blocked_mode(void) {
    handle(SIGINT, on_signal, 0);
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("ready\n");
    do {
        for (int i = 0; i < 1000; i++)
            spin_sink++;
        sigpending(&pending);
    } while (!sigismember(&pending, SIGINT));
    printf("pending while blocked: yes, handler ran: %s\n", got_count ? "yes" : "no");
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("after unblocking: handler ran %d, from the parent: %s\n", (int)got_count,
           got_from_parent ? "yes" : "no");
    return guest_exit_status("sig_host");
}

static int status_of(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("  %-44s exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("  %-44s killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("  %-44s status %#x\n", what, status);
}

static void self_checks(void) {
    printf("self:\n");
    handle(SIGINT, on_signal, 0);
    kill(getpid(), SIGINT);
    printf("  kill(getpid(), SIGINT): caught %s, code %s, from self %s\n",
           got_signo == SIGINT ? "yes" : "no", code_name(got_code), got_from_self ? "yes" : "no");

    printf("SIGCHLD:\n");
    handle(SIGCHLD, on_sigchld, SA_RESTART);
    pid_t pid = fork();
    if (pid == 0)
        _exit(3);
    spin_until(&chld_count);
    printf("  while computing: code %s status %d pid matches %s\n",
           chld_code == CLD_EXITED ? "CLD_EXITED" : "?", (int)chld_status,
           chld_pid == pid ? "yes" : "no");
    describe("the child", status_of(pid));
    signal(SIGCHLD, SIG_DFL);

    printf("SIGPIPE:\n");
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    got_count = 0;
    handle(SIGPIPE, on_signal, 0);
    errno = 0;
    ssize_t n = write(fds[1], "x", 1);
    printf("  caught: %s, write %zd %s, code %s\n", got_signo == SIGPIPE ? "yes" : "no", n,
           errno == EPIPE ? "EPIPE" : "?", code_name(got_code));
    signal(SIGPIPE, SIG_DFL);
    pid = fork();
    if (pid == 0) {
        write(fds[1], "x", 1);
        _exit(0);
    }
    describe("default action in a child", status_of(pid));
    close(fds[1]);

    printf("process group:\n");
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        got_count = 0;
        handle(SIGUSR1, on_signal, SA_RESTART);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            signal(SIGUSR1, SIG_DFL);
            kill(0, SIGUSR1);
            for (;;)
                pause();
        }
        int st = status_of(grandchild);
        spin_until(&got_count);
        /* report: the handler ran once, the grandchild died of SIGUSR1 */
        _exit((got_count == 1 ? 10 : 20) + (WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1));
    }
    describe("kill(0, SIGUSR1): (caught once, killed) = 11", status_of(pid));

    printf("default actions:\n");
    int sigs[] = {SIGTERM, SIGQUIT, SIGALRM, SIGRTMIN};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        pid = fork();
        if (pid == 0)
            spin_forever();
        usleep(20000);
        kill(pid, sigs[i]);
        char what[64];
        snprintf(what, sizeof what, "computing child sent signal %d", sigs[i]);
        describe(what, status_of(pid));
    }
    pid = fork();
    if (pid == 0)
        spin_forever();
    kill(pid, SIGSTOP);
    int status;
    while (waitpid(pid, &status, WUNTRACED) < 0 && errno == EINTR)
        ;
    printf("  stopped: %s by %s\n", WIFSTOPPED(status) ? "yes" : "no",
           WSTOPSIG(status) == SIGSTOP ? "SIGSTOP" : "?");
    kill(pid, SIGCONT);
    while (waitpid(pid, &status, WCONTINUED) < 0 && errno == EINTR)
        ;
    printf("  continued: %s\n", WIFCONTINUED(status) ? "yes" : "no");
    kill(pid, SIGKILL);
    describe("then SIGKILL", status_of(pid));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "wait") == 0)
        return wait_mode(argc, argv);
    if (argc == 2 && strcmp(argv[1], "default") == 0) {
        printf("ready\n");
        spin_forever();
    }
    if (argc == 2 && strcmp(argv[1], "blocked") == 0)
        return blocked_mode();
    if (argc == 2 && strcmp(argv[1], "segv") == 0) {
        printf("writing to address 16\n");
        *(volatile int *)OPAQUE((uintptr_t)16) = 1;
    }
    if (argc == 2 && strcmp(argv[1], "abort") == 0) {
        printf("abort\n");
        abort();
    }
    if (argc == 2 && strcmp(argv[1], "ill") == 0) {
        printf("illegal instruction\n");
#if defined(__riscv)
        __asm__ volatile(".2byte 0x0000");
#elif defined(__aarch64__)
        __asm__ volatile(".inst 0x00000000");
#else
        __asm__ volatile("ud2");
#endif
    }
    printf("sig_host on %s\n", GUEST_ARCH);
    self_checks();
    return guest_exit_status("sig_host");
}
