/* fork_exec_pipe: processes: fork, wait statuses, pipes, execve, vfork.
 *
 *     fork_exec_pipe                  run everything (the parent)
 *     fork_exec_pipe child N WORD...  the exec'd child: print its arguments, exit N
 *     fork_exec_pipe sum              the exec'd filter: checksum stdin to stdout
 *
 * The parent forks children that exit with a status, die of SIGTERM or
 * SIGKILL, or exit(256) (status 0); checks WIFEXITED/WEXITSTATUS/WIFSIGNALED/
 * WTERMSIG; sends 200 KB through a pipe to a forked child and gets its
 * checksum back on another pipe (more than a pipe's buffer, so both sides
 * block in turn); execs itself (argv[0]) as a child and as a filter with its
 * stdin and stdout redirected to pipes; vforks a child that _exits and one
 * that execs; and checks the errors: execve of a missing file (ENOENT),
 * waitpid with no children (ECHILD), WNOHANG before a child is done.
 *
 * execve of a guest binary needs the kernel to run it: under qemu-user that
 * takes a binfmt_misc registration, which containers often lack. If the
 * environment variable VM_GUEST_EXEC_WRAPPER is set (to the path of
 * qemu-riscv64-static, say), the program execs WRAPPER argv[0] ARGS instead;
 * the output is the same either way. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

extern char **environ;
static const char *self;
static volatile sig_atomic_t sigchld_count;

static void on_sigchld(int sig) {
    (void)sig;
    sigchld_count++;
}

/* execve(self, {self, args...}), through VM_GUEST_EXEC_WRAPPER when it is set. */
static void exec_self(char *const args[]) {
    char *argv[16];
    int n = 0;
    const char *wrapper = getenv("VM_GUEST_EXEC_WRAPPER");
    if (wrapper && *wrapper)
        argv[n++] = (char *)wrapper;
    argv[n++] = (char *)self;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    execve(argv[0], argv, environ);
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("  %-40s exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("  %-40s killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("  %-40s status %#x\n", what, status);
}

static int wait_for(pid_t pid) {
    int status = -1;
    pid_t got;
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    CHECK(got == pid);
    return status;
}

static uint32_t checksum(const unsigned char *p, size_t n, uint32_t h) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int child_main(int argc, char **argv) {
    printf("  [exec'd child] argc %d:", argc);
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    return atoi(argv[2]);
}

static int sum_main(void) {
    unsigned char buf[4096];
    uint32_t h = 2166136261u;
    size_t total = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        h = checksum(buf, (size_t)n, h);
        total += (size_t)n;
    }
    printf("%zu bytes, checksum %08x\n", total, h);
    return n < 0 ? 1 : 0;
}

static void statuses(void) {
    printf("exit statuses:\n");
    static const struct {
        const char *what;
        int how;
    } CASES[] = {
        {"child _exit(0)", 0},
        {"child exit(3)", 1},
        {"child exit(256)", 2},
        {"child exit(42)", 3},
        {"child raise(SIGTERM)", 4},
        {"child raise(SIGKILL)", 5},
        {"child kill(getpid(), SIGUSR1)", 6},
    };
    for (unsigned i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            switch (CASES[i].how) {
            case 0:
                _exit(0);
            case 1:
                exit(3);
            case 2:
                exit(256);
            case 3:
                exit(42);
            case 4:
                raise(SIGTERM);
                break;
            case 5:
                raise(SIGKILL);
                break;
            case 6:
                kill(getpid(), SIGUSR1);
                break;
            }
            _exit(99);
        }
        describe(CASES[i].what, wait_for(pid));
    }
}

static void pipes(void) {
    printf("pipes:\n");
    enum { SIZE = 200 * 1000 };
    unsigned char *data = malloc(SIZE);
    for (int i = 0; i < SIZE; i++)
        data[i] = (unsigned char)(i * 31 + (i >> 9));
    int down[2], up[2];
    CHECK(pipe(down) == 0 && pipe(up) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        unsigned char buf[1000];
        uint32_t h = 2166136261u;
        size_t total = 0;
        ssize_t n;
        while ((n = read(down[0], buf, sizeof buf)) > 0) {
            h = checksum(buf, (size_t)n, h);
            total += (size_t)n;
        }
        char line[64];
        int len = snprintf(line, sizeof line, "%zu %08x %s", total, h,
                           getppid() > 1 ? "has-parent" : "orphan");
        CHECK(write(up[1], line, (size_t)len) == len);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);

    int status;
    printf("  %-40s %d\n", "WNOHANG while the child waits for input", waitpid(pid, &status, WNOHANG));
    size_t sent = 0;
    while (sent < SIZE) {
        ssize_t n = write(down[1], data + sent, SIZE - sent);
        CHECK(n > 0);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    close(down[1]);
    char reply[64] = {0};
    ssize_t got = 0, n;
    while ((n = read(up[0], reply + got, sizeof reply - 1 - (size_t)got)) > 0)
        got += n;
    close(up[0]);
    printf("  %-40s %zu bytes, checksum %08x\n", "parent sent", sent,
           checksum(data, SIZE, 2166136261u));
    printf("  %-40s %s\n", "child received", reply);
    describe("child", wait_for(pid));
    free(data);
}

static void execs(void) {
    printf("execve:\n");
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char *args[] = {"child", "7", "hello", "world", NULL};
        exec_self(args);
        fprintf(stderr, "fork_exec_pipe: execve of %s failed: %s\n", self, strerror(errno));
        _exit(127);
    }
    int status = wait_for(pid);
    describe("exec'd child", status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);

    /* A filter: stdin and stdout are pipes to and from the parent. */
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0);
    fflush(stdout);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        char *args[] = {"sum", NULL};
        exec_self(args);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    const char *text = "The quick brown fox jumps over the lazy dog\n";
    for (int i = 0; i < 100; i++)
        CHECK(write(in[1], text, strlen(text)) == (ssize_t)strlen(text));
    close(in[1]);
    char reply[128] = {0};
    ssize_t got = 0, n;
    while ((n = read(out[0], reply + got, sizeof reply - 1 - (size_t)got)) > 0)
        got += n;
    close(out[0]);
    printf("  %-40s %s", "filter replied", reply);
    uint32_t expected = 2166136261u;
    for (int i = 0; i < 100; i++)
        expected = checksum((const unsigned char *)text, strlen(text), expected);
    printf("  %-40s %zu bytes, checksum %08x\n", "expected", 100 * strlen(text), expected);
    char expected_reply[64];
    snprintf(expected_reply, sizeof expected_reply, "%zu bytes, checksum %08x\n",
             100 * strlen(text), expected);
    CHECK(strcmp(reply, expected_reply) == 0);
    describe("filter", wait_for(pid));

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char *argv[] = {"/nonexistent/program", NULL};
        execve(argv[0], argv, environ);
        _exit(errno == ENOENT ? 40 : 41);
    }
    describe("execve of a missing file (40: ENOENT)", wait_for(pid));
}

static void vforks(void) {
    printf("vfork:\n");
    fflush(stdout);
    pid_t pid = vfork();
    if (pid == 0)
        _exit(5);
    CHECK(pid > 0);
    describe("vfork child _exit(5)", wait_for(pid));
    fflush(stdout);
    pid = vfork();
    if (pid == 0) {
        char *args[] = {"child", "9", "from", "vfork", NULL};
        exec_self(args);
        _exit(127);
    }
    CHECK(pid > 0);
    int status = wait_for(pid);
    describe("vfork child exec'd", status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9);
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc >= 3 && strcmp(argv[1], "child") == 0)
        return child_main(argc, argv);
    if (argc == 2 && strcmp(argv[1], "sum") == 0)
        return sum_main();

    printf("fork_exec_pipe on %s\n", GUEST_ARCH);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    statuses();
    pipes();
    execs();
    vforks();

    int status;
    errno = 0;
    pid_t none = waitpid(-1, &status, WNOHANG);
    printf("waitpid with no children: %d %s\n", (int)none, errno == ECHILD ? "ECHILD" : "?");
    printf("SIGCHLD received: %s\n", sigchld_count > 0 ? "yes" : "no");
    return guest_exit_status("fork_exec_pipe");
}
