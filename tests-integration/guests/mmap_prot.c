/* mmap_prot: mmap, mprotect, mremap, munmap, msync, and faults caught by a handler.
 *
 * Anonymous private mappings (zero-filled, writable), a file-backed shared
 * mapping (writes reach the file, and file writes show in the mapping), a
 * private file mapping (copy-on-write: the file is untouched), mprotect to
 * read-only and PROT_NONE, mremap growing (moving if it must) and moving to a
 * fixed address, munmap of a page in the middle of a mapping. A SIGSEGV
 * handler (SA_SIGINFO) catches each bad access and siglongjmps out; it
 * reports si_code (SEGV_ACCERR or SEGV_MAPERR) and whether si_addr is the
 * faulting address, which is printed only relative to its mapping.
 *
 * The file lives in the directory argv[1], or else in a fresh /tmp/mmap_prot.XXXXXX
 * that is removed at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"

static long page;
static sigjmp_buf fault_jump;
static volatile sig_atomic_t faults;
static volatile int fault_code;
static void *volatile fault_addr;

static void on_segv(int sig, siginfo_t *info, void *context) {
    (void)context;
    faults++;
    fault_code = info->si_code;
    fault_addr = info->si_addr;
    CHECK(sig == SIGSEGV && info->si_signo == SIGSEGV);
    siglongjmp(fault_jump, 1);
}

static const char *code_name(int code) {
    switch (code) {
    case SEGV_MAPERR:
        return "SEGV_MAPERR";
    case SEGV_ACCERR:
        return "SEGV_ACCERR";
    default:
        return "other";
    }
}

/* Try to write (or read) one byte at p; report whether it faulted, how, and where. */
static int probe(const char *what, volatile char *p, int write, void *base) {
    int faulted;
    fault_code = 0;
    fault_addr = NULL;
    if (sigsetjmp(fault_jump, 1) == 0) {
        if (write)
            *p = 'w';
        else
            (void)*p;
        faulted = 0;
    } else {
        faulted = 1;
    }
    if (faulted)
        printf("  %-34s fault %s at %s+%ld (%s)\n", what, code_name(fault_code),
               fault_addr == (void *)p ? "the address" : "ANOTHER address",
               (long)((char *)fault_addr - (char *)base), write ? "write" : "read");
    else
        printf("  %-34s ok\n", what);
    return faulted;
}

static uint32_t sum(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    printf("mmap_prot on %s\n", GUEST_ARCH);
    page = sysconf(_SC_PAGESIZE);
    printf("page size: %ld\n", page);

    char dir_buf[64];
    const char *dir = argc > 1 ? argv[1] : NULL;
    if (dir == NULL) {
        strcpy(dir_buf, "/tmp/mmap_prot.XXXXXX");
        dir = mkdtemp(dir_buf);
        CHECK(dir != NULL);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);

    /* --- anonymous ---------------------------------------------------------- */
    printf("anonymous:\n");
    size_t len = 4 * (size_t)page;
    unsigned char *anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED);
    printf("  page aligned: %s, zero-filled: %s\n", (uintptr_t)anon % page == 0 ? "yes" : "no",
           all_zero(anon, len) ? "yes" : "no");
    for (size_t i = 0; i < len; i++)
        anon[i] = (unsigned char)(i * 7 + i / 4096);
    uint32_t written = sum(anon, len);
    printf("  sum after writing: %08x\n", written);

    /* --- mprotect --------------------------------------------------------------- */
    printf("mprotect:\n");
    CHECK(mprotect(anon + page, page, PROT_READ) == 0);
    probe("read of read-only page", (char *)anon + page + 5, 0, anon);
    probe("write to read-only page", (char *)anon + page + 5, 1, anon);
    probe("write to the page before it", (char *)anon + page - 1, 1, anon);
    CHECK(mprotect(anon + 2 * page, page, PROT_NONE) == 0);
    probe("read of PROT_NONE page", (char *)anon + 2 * page + 100, 0, anon);
    probe("write to PROT_NONE page", (char *)anon + 2 * page + 100, 1, anon);
    CHECK(mprotect(anon, len, PROT_READ | PROT_WRITE) == 0);
    probe("write after mprotect back to RW", (char *)anon + page + 5, 1, anon);
    /* Put back the two bytes the successful probes wrote. */
    anon[page + 5] = (unsigned char)((page + 5) * 7 + (page + 5) / 4096);
    anon[page - 1] = (unsigned char)((page - 1) * 7 + (page - 1) / 4096);
    printf("  contents kept through mprotect: %s\n", sum(anon, len) == written ? "yes" : "no");
    errno = 0;
    printf("  mprotect of an unaligned address: %s\n",
           mprotect(anon + 1, page, PROT_READ) == -1 && errno == EINVAL ? "EINVAL" : "?");

    /* --- mremap --------------------------------------------------------------- */
    printf("mremap:\n");
    uint32_t before = sum(anon, len);
    unsigned char *grown = mremap(anon, len, 64 * (size_t)page, MREMAP_MAYMOVE);
    CHECK(grown != MAP_FAILED);
    printf("  grown to 64 pages: contents kept %s, new part zero %s\n",
           sum(grown, len) == before ? "yes" : "no",
           all_zero(grown + len, 60 * (size_t)page) ? "yes" : "no");
    grown[63 * page] = 1;
    /* Move it to a fixed place: a spot reserved by mapping and unmapping it. */
    unsigned char *spot = mmap(NULL, 64 * (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(spot != MAP_FAILED);
    unsigned char *moved =
        mremap(grown, 64 * (size_t)page, 64 * (size_t)page, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
    printf("  moved to a fixed address: %s, contents kept %s\n", moved == spot ? "yes" : "no",
           sum(moved, len) == before && moved[63 * page] == 1 ? "yes" : "no");
    if (grown != spot)
        probe("read of the old place", (char *)grown + 10, 0, grown);
    unsigned char *shrunk = mremap(moved, 64 * (size_t)page, 2 * (size_t)page, 0);
    printf("  shrunk in place: %s\n", shrunk == moved ? "yes" : "no");
    probe("read past the shrunk end", (char *)moved + 3 * page, 0, moved);

    /* --- munmap --------------------------------------------------------------- */
    printf("munmap:\n");
    unsigned char *three = mmap(NULL, 3 * (size_t)page, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(three != MAP_FAILED);
    memset(three, 0x5a, 3 * (size_t)page);
    CHECK(munmap(three + page, page) == 0);
    probe("write to the first page", (char *)three + 1, 1, three);
    probe("write to the unmapped middle", (char *)three + page + 1, 1, three);
    probe("read of the last page", (char *)three + 2 * page + 1, 0, three);
    printf("  last page kept: %s\n", three[2 * page + 2] == 0x5a ? "yes" : "no");
    CHECK(munmap(three, 3 * (size_t)page) == 0); /* unmapping a hole is fine */
    CHECK(munmap(shrunk, 2 * (size_t)page) == 0);
    probe("NULL+64 write", (char *)64, 1, NULL);

    /* --- file-backed ------------------------------------------------------------ */
    printf("file-backed:\n");
    char path[128];
    snprintf(path, sizeof path, "%s/mapped.bin", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    size_t flen = 3 * (size_t)page;
    unsigned char *buf = malloc(flen);
    for (size_t i = 0; i < flen; i++)
        buf[i] = (unsigned char)(i % 251);
    CHECK(write(fd, buf, flen) == (ssize_t)flen);

    unsigned char *shared = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(shared != MAP_FAILED);
    printf("  shared mapping sees the file: %s\n", memcmp(shared, buf, flen) == 0 ? "yes" : "no");
    memcpy(shared + page, "written through the mapping", 27);
    CHECK(msync(shared, flen, MS_SYNC) == 0);
    char back[32] = {0};
    CHECK(pread(fd, back, 27, page) == 27);
    printf("  pread after msync: %s\n", back);
    CHECK(pwrite(fd, "FILE", 4, 2 * page) == 4);
    printf("  mapping sees pwrite: %.4s\n", (char *)shared + 2 * page);

    unsigned char *priv = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    memcpy(priv, "private", 7);
    CHECK(pread(fd, back, 7, 0) == 7);
    printf("  private write reaches the file: %s\n", memcmp(back, "private", 7) == 0 ? "yes" : "no");
    printf("  private mapping sum: %08x, shared mapping sum: %08x\n", sum(priv, flen),
           sum(shared, flen));

    unsigned char *ro = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, page);
    CHECK(ro != MAP_FAILED);
    printf("  read-only mapping at offset one page: %.27s\n", (char *)ro);
    probe("write to a read-only file mapping", (char *)ro + 3, 1, ro);

    /* A mapping past the end of the file: the whole pages past EOF give SIGBUS,
     * which this guest does not exercise; within the last page the tail is zero. */
    CHECK(ftruncate(fd, 2 * page + 100) == 0);
    printf("  tail of the last page after ftruncate is zero: %s\n",
           all_zero(shared + 2 * page + 100, page - 100) ? "yes" : "no");

    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    printf("  file size: %lld\n", (long long)st.st_size);
    CHECK(munmap(shared, flen) == 0);
    CHECK(munmap(priv, flen) == 0);
    CHECK(munmap(ro, page) == 0);
    close(fd);
    free(buf);
    CHECK(unlink(path) == 0);
    errno = 0;
    printf("  mmap of a closed fd: %s\n",
           mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EBADF ? "EBADF" : "?");
    errno = 0;
    printf("  mmap of length 0: %s\n",
           mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL ? "EINVAL" : "?");

    if (argc <= 1)
        CHECK(rmdir(dir) == 0);
    printf("faults caught: %d\n", (int)faults);
    return guest_exit_status("mmap_prot");
}
