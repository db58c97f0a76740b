/* exec_state: what execve keeps and what it resets, and how it fails.
 *
 *     exec_state [DIR]        the checks below, in DIR (or a /tmp/exec_state.XXXXXX it removes)
 *     exec_state report FD    the exec'd side: print the state it inherited
 *     exec_state args ...     print argc and argv (the #! case runs this)
 *     exec_state script DIR   the #! cases (not under qemu-user without binfmt_misc, where a
 *                             script whose interpreter is a guest program cannot run)
 *
 * Kept across execve: the signal mask, ignored signals (SIG_IGN), descriptors without
 * close-on-exec, the pid, the parent; reset: handled signals go back to SIG_DFL,
 * close-on-exec descriptors are closed, the alternate signal stack is gone.
 * Failures: ENOENT (missing file, missing #! interpreter), ENOTDIR (a file used as a
 * directory), EACCES (no execute permission, a directory), ENOEXEC (an executable text file
 * without #!), and the process is unchanged after a failed execve.
 * A #! line: the interpreter gets its one optional argument, the script's path, then the
 * script's arguments (argv[0] of the call is dropped).
 *
 * Like fork_exec_pipe, it execs $VM_GUEST_EXEC_WRAPPER PROGRAM ARGS when that variable is set
 * (under qemu-user). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

extern char **environ;
static const char *self;

static void on_term(int sig) { (void)sig; }

static const char *errno_name(int e) {
    switch (e) {
    case ENOENT:
        return "ENOENT";
    case ENOTDIR:
        return "ENOTDIR";
    case EACCES:
        return "EACCES";
    case ENOEXEC:
        return "ENOEXEC";
    case ELOOP:
        return "ELOOP";
    }
    return "other";
}

static int report_main(int fd) {
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    struct sigaction usr2, term;
    sigaction(SIGUSR2, NULL, &usr2);
    sigaction(SIGTERM, NULL, &term);
    stack_t ss;
    sigaltstack(NULL, &ss);
    char buf[8] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    printf("  [exec'd] SIGUSR1 blocked: %s, SIGUSR2: %s, SIGTERM: %s\n",
           sigismember(&mask, SIGUSR1) ? "yes" : "no",
           usr2.sa_handler == SIG_IGN ? "SIG_IGN" : "?",
           term.sa_handler == SIG_DFL ? "SIG_DFL" : "still handled");
    printf("  [exec'd] descriptor kept: %s, close-on-exec one closed: %s\n",
           n > 0 ? buf : "no", fcntl(fd + 1, F_GETFD) < 0 && errno == EBADF ? "yes" : "no");
    printf("  [exec'd] alternate stack: %s\n", ss.ss_flags & SS_DISABLE ? "disabled" : "kept");
    return 0;
}

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

static void write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static void try_exec(const char *what, const char *path) {
    char *argv[] = {(char *)path, NULL};
    errno = 0;
    int rc = execve(path, argv, environ);
    printf("  %-40s %d %s\n", what, rc, errno_name(errno));
}

static int wait_child(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static void failures(const char *dir) {
    printf("failures:\n");
    char path[512];
    snprintf(path, sizeof path, "%s/missing", dir);
    try_exec("missing file", path);
    snprintf(path, sizeof path, "%s/plain", dir);
    write_file(path, "not a program\n", 0644);
    try_exec("no execute permission", path);
    snprintf(path, sizeof path, "%s/plain/x", dir);
    try_exec("a file used as a directory", path);
    try_exec("a directory", dir);
    snprintf(path, sizeof path, "%s/text", dir);
    write_file(path, "echo not a script\n", 0755);
    try_exec("executable text without #!", path);
    snprintf(path, sizeof path, "%s/badinterp", dir);
    write_file(path, "#!/nonexistent/interpreter\n", 0755);
    try_exec("#! a missing interpreter", path);
    printf("  still the same process after failures: %s\n", self ? "yes" : "no");
}

static void state(void) {
    printf("state kept and reset:\n");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGTERM, on_term);
    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    int fds[2];
    CHECK(pipe(fds) == 0);
    int keep = fcntl(fds[0], F_DUPFD, 40);
    int cloexec = fcntl(fds[0], F_DUPFD_CLOEXEC, 41);
    CHECK(keep == 40 && cloexec == 41);
    CHECK(write(fds[1], "yes", 3) == 3);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"report", "40", NULL};
        exec_self(args);
        _exit(127);
    }
    int status = wait_child(pid);
    printf("  exec'd child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    close(keep);
    close(cloexec);
    close(fds[0]);
    close(fds[1]);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

static int script_main(const char *dir) {
    char script[512], nested[512];
    char text[1024];
    snprintf(script, sizeof script, "%s/script", dir);
    snprintf(text, sizeof text, "#!%s args one-argument with spaces\nbody\n", self);
    write_file(script, text, 0755);
    snprintf(nested, sizeof nested, "%s/nested", dir);
    snprintf(text, sizeof text, "#! %s\t\n", script);
    write_file(nested, text, 0755);
    fflush(stdout);
    for (int i = 0; i < 2; i++) {
        const char *path = i == 0 ? script : nested;
        pid_t pid = fork();
        if (pid == 0) {
            char *argv[] = {"ignored-argv0", "a1", "a 2", NULL};
            execve(path, argv, environ);
            printf("execve %s: %s\n", path, strerror(errno));
            _exit(127);
        }
        int status = wait_child(pid);
        printf("  exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    unlink(nested);
    unlink(script);
    return guest_exit_status("exec_state");
}

int main(int argc, char **argv) {
    self = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "report") == 0)
        return report_main(atoi(argv[2]));
    if (argc >= 2 && strncmp(argv[1], "args", 4) == 0) {
        printf("  [interpreter] argc %d: [%s]", argc, strrchr(argv[0], '/') ? "a path" : argv[0]);
        for (int i = 1; i < argc; i++) {
            const char *slash = strrchr(argv[i], '/');
            printf(" [%s]", slash ? slash + 1 : argv[i]);
        }
        printf("\n");
        return 3;
    }
    if (argc == 3 && strcmp(argv[1], "script") == 0)
        return script_main(argv[2]);

    printf("exec_state on %s\n", GUEST_ARCH);
    char tmpl[] = "/tmp/exec_state.XXXXXX";
    const char *dir = argc >= 2 ? argv[1] : mkdtemp(tmpl);
    CHECK(dir != NULL);
    state();
    failures(dir);
    char path[512];
    const char *names[] = {"plain", "text", "badinterp"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    if (argc < 2)
        rmdir(dir);
    return guest_exit_status("exec_state");
}
