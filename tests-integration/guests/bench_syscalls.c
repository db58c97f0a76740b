/* bench_syscalls: the syscall-heavy benchmark guest.
 *
 *     bench_syscalls [ITERATIONS]      (default 10000)
 *
 * Each iteration makes the same 10 cheap system calls, each checked: getppid,
 * write and read of 32 bytes through a pipe, lseek to the end of the program's
 * own file (argv[0]) and a 4-byte pread of it, fstat of the pipe,
 * clock_gettime(CLOCK_MONOTONIC) through syscall() (never the vDSO, so that it
 * is a real syscall everywhere), an rt_sigprocmask query, an lseek on the pipe
 * (ESPIPE) and fcntl(F_GETFL). Almost no user-mode work between them: the time
 * is the syscall round trip (under `vm run --accel kvm`, a VM exit to Python
 * and back). It prints the iteration count, the number of syscalls the loop
 * made (bench reports syscalls per second from it) and a checksum of the bytes
 * read through the pipe; the output depends only on ITERATIONS and the
 * architecture's name. Start-up and set-up syscalls (libc's, pipe, open) are
 * not counted. argv[0] must be a path to the program's file (as `vm run`,
 * qemu and a shell given a path pass it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define CALLS_PER_ITERATION 10
#define MESSAGE 32

enum { GETPPID, WRITE, READ, LSEEK, PREAD, FSTAT, CLOCK, SIGMASK, ESPIPE_LSEEK, FCNTL, KINDS };
static const char *const names[KINDS] = {
    "getppid", "write", "read", "lseek", "pread", "fstat", "clock_gettime", "rt_sigprocmask",
    "lseek on a pipe", "fcntl"};
static long bad[KINDS];

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v;
    h *= UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    CHECK(iterations >= 0);
    int p[2];
    CHECK(pipe(p) == 0);
    int exe = open(argv[0], O_RDONLY | O_CLOEXEC);
    CHECK(exe >= 0);
    struct stat st;
    CHECK(fstat(exe, &st) == 0);
    unsigned char head[64 + 4];
    CHECK(pread(exe, head, sizeof head, 0) == (ssize_t)sizeof head);
    CHECK(memcmp(head, "\177ELF", 4) == 0);
    if (guest_failures)
        return guest_exit_status("bench_syscalls");

    unsigned char out[MESSAGE], in[MESSAGE], word[4];
    struct timespec last = {0, 0}, now;
    uint64_t h = 0;
    long calls = 0;
    for (long it = 0; it < iterations; it++) {
        for (int k = 0; k < MESSAGE; k++)
            out[k] = (unsigned char)(it * 31 + k * 7);
        if (getppid() <= 0)
            bad[GETPPID]++;
        if (write(p[1], out, MESSAGE) != MESSAGE)
            bad[WRITE]++;
        if (read(p[0], in, MESSAGE) != MESSAGE || memcmp(in, out, MESSAGE) != 0)
            bad[READ]++;
        if (lseek(exe, 0, SEEK_END) != st.st_size)
            bad[LSEEK]++;
        long off = it % 64;
        if (pread(exe, word, 4, off) != 4 || memcmp(word, head + off, 4) != 0)
            bad[PREAD]++;
        struct stat ps;
        if (fstat(p[0], &ps) != 0 || !S_ISFIFO(ps.st_mode))
            bad[FSTAT]++;
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now) != 0 || now.tv_sec < last.tv_sec
            || (now.tv_sec == last.tv_sec && now.tv_nsec < last.tv_nsec))
            bad[CLOCK]++;
        last = now;
        sigset_t mask;
        if (sigprocmask(SIG_BLOCK, NULL, &mask) != 0 || sigismember(&mask, SIGUSR1))
            bad[SIGMASK]++;
        errno = 0;
        if (lseek(p[0], 0, SEEK_CUR) != -1 || errno != ESPIPE)
            bad[ESPIPE_LSEEK]++;
        if ((fcntl(p[1], F_GETFL) & O_ACCMODE) != O_WRONLY)
            bad[FCNTL]++;
        calls += CALLS_PER_ITERATION;
        h = mix(h, (uint64_t)in[it % MESSAGE] | (uint64_t)in[MESSAGE - 1] << 8);
    }
    close(p[0]);
    close(p[1]);
    close(exe);
    for (int k = 0; k < KINDS; k++)
        if (bad[k]) {
            printf("CHECK FAILED: %s gave %ld wrong answer(s)\n", names[k], bad[k]);
            guest_failures++;
        }
    printf("bench_syscalls on %s: %ld iterations, %ld syscalls, checksum %016llx\n", GUEST_ARCH,
           iterations, calls, (unsigned long long)h);
    return guest_exit_status("bench_syscalls");
}
