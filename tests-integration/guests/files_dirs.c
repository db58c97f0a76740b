/* files_dirs: file and directory system calls in a scratch directory.
 *
 * create/open/read/write/lseek/pread/pwrite/readv/writev/ftruncate/fstat/stat/
 * lstat/fstatat, rename (also over an existing file), link, unlink, mkdir,
 * rmdir, opendir/readdir (getdents64; names printed sorted), symlink/readlink,
 * access, dup/dup2/dup3, pipe/pipe2, fcntl (F_GETFL, F_SETFL O_NONBLOCK,
 * F_GETFD/F_SETFD, F_DUPFD), chdir/getcwd, chmod/fchmod, and the errno of
 * each expected failure, by name.
 *
 * The scratch directory is argv[1], or else a fresh /tmp/files_dirs.XXXXXX;
 * everything created is removed at the end. Printed: file types, modes masked
 * to the permission bits (umask is set to 022 first), sizes and link counts of
 * files (not of directories: those depend on the file system), names; never
 * times, inode or device numbers, descriptor numbers or the scratch
 * directory's own path. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "guest.h"

static const char *errno_name(int e) {
    switch (e) {
    case 0:
        return "0";
    case ENOENT:
        return "ENOENT";
    case EEXIST:
        return "EEXIST";
    case ENOTEMPTY:
        return "ENOTEMPTY";
    case EISDIR:
        return "EISDIR";
    case ENOTDIR:
        return "ENOTDIR";
    case EBADF:
        return "EBADF";
    case EINVAL:
        return "EINVAL";
    case EAGAIN:
        return "EAGAIN";
    case ESPIPE:
        return "ESPIPE";
    case EACCES:
        return "EACCES";
    case EPERM:
        return "EPERM";
    case ENAMETOOLONG:
        return "ENAMETOOLONG";
    case ELOOP:
        return "ELOOP";
    case EPIPE:
        return "EPIPE";
    default:
        return "other";
    }
}

/* Print the result of a call expected to fail: "-1 ENOENT". */
#define FAILS(what, call)                                                                  \
    do {                                                                                   \
        errno = 0;                                                                         \
        long rc_ = (long)(call);                                                           \
        printf("  %-40s %ld %s\n", what, rc_, errno_name(rc_ < 0 ? errno : 0));            \
    } while (0)

static const char *type_name(mode_t m) {
    if (S_ISREG(m))
        return "file";
    if (S_ISDIR(m))
        return "dir";
    if (S_ISLNK(m))
        return "symlink";
    if (S_ISFIFO(m))
        return "fifo";
    return "other";
}

static void show_stat(const char *label, const struct stat *st) {
    /* A directory's size and link count depend on the file system: not shown. */
    printf("  %-40s %s mode %04o", label, type_name(st->st_mode), (unsigned)(st->st_mode & 07777));
    if (!S_ISDIR(st->st_mode))
        printf(" size %lld links %lu", (long long)st->st_size, (unsigned long)st->st_nlink);
    printf("\n");
}

static void show_path(const char *label, const char *path, int follow) {
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) == 0)
        show_stat(label, &st);
    else
        printf("  %-40s -1 %s\n", label, errno_name(errno));
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *label, const char *path) {
    DIR *d = opendir(path);
    CHECK(d != NULL);
    if (!d)
        return;
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    printf("  %-40s", label);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(close(fd) == 0);
}

static void read_file(const char *label, const char *path) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("  %-40s -1 %s\n", label, errno_name(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    printf("  %-40s \"%s\"\n", label, buf);
}

static void files(void) {
    printf("files:\n");
    int fd = open("data.txt", O_RDWR | O_CREAT | O_EXCL, 0640);
    CHECK(fd >= 0);
    FAILS("open O_CREAT|O_EXCL of an existing file", open("data.txt", O_RDWR | O_CREAT | O_EXCL, 0640));
    CHECK(write(fd, "hello, world\n", 13) == 13);
    printf("  %-40s %ld\n", "lseek(0, SEEK_CUR)", (long)lseek(fd, 0, SEEK_CUR));
    printf("  %-40s %ld\n", "lseek(-6, SEEK_END)", (long)lseek(fd, -6, SEEK_END));
    char buf[64] = {0};
    printf("  %-40s %ld \"%.5s\"\n", "read 5", (long)read(fd, buf, 5), buf);
    printf("  %-40s %ld\n", "lseek(2, SEEK_SET)", (long)lseek(fd, 2, SEEK_SET));
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5);
    printf("  %-40s %ld (pwrite leaves the offset)\n", "lseek(0, SEEK_CUR)",
           (long)lseek(fd, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    printf("  %-40s %ld \"%s\"\n", "pread 12 at 0", (long)pread(fd, buf, 12, 0), buf);
    FAILS("lseek to a negative offset", lseek(fd, -100, SEEK_SET));

    /* Sparse: write past the end; the hole reads as zeros. */
    CHECK(lseek(fd, 100, SEEK_SET) == 100);
    CHECK(write(fd, "end", 3) == 3);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    show_stat("fstat after writing at 100", &st);
    memset(buf, 'x', sizeof buf);
    CHECK(pread(fd, buf, 4, 20) == 4);
    printf("  %-40s %d %d %d %d\n", "hole bytes", buf[0], buf[1], buf[2], buf[3]);

    CHECK(ftruncate(fd, 5) == 0);
    CHECK(fstat(fd, &st) == 0);
    show_stat("after ftruncate 5", &st);
    CHECK(ftruncate(fd, 4096) == 0);
    CHECK(fstat(fd, &st) == 0);
    show_stat("after ftruncate 4096", &st);
    memset(buf, 'x', sizeof buf);
    printf("  %-40s %ld\n", "read at the old end (offset 103)", (long)read(fd, buf, 8));
    printf("  %-40s %d\n", "a byte there", buf[0]);
    printf("  %-40s %ld\n", "read at EOF", (long)(lseek(fd, 0, SEEK_END), read(fd, buf, 8)));

    /* writev / readv */
    struct iovec out[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    printf("  %-40s %ld\n", "writev 2+0+4", (long)writev(fd, out, 3));
    char a[3] = {0}, b[8] = {0};
    struct iovec in[2] = {{a, 2}, {b, 7}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    printf("  %-40s %ld \"%s\" \"%s\"\n", "readv 2+7", (long)readv(fd, in, 2), a, b);

    /* fchmod, chmod, O_APPEND */
    CHECK(fchmod(fd, 0600) == 0);
    CHECK(fstat(fd, &st) == 0);
    show_stat("after fchmod 0600", &st);
    CHECK(close(fd) == 0);
    FAILS("close of a closed fd", close(fd));
    FAILS("read of a closed fd", read(fd, buf, 1));
    CHECK(chmod("data.txt", 0444) == 0);
    show_path("after chmod 0444", "data.txt", 1);
    CHECK(chmod("data.txt", 0644) == 0);

    fd = open("data.txt", O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, "+append", 7) == 7);
    int flags = fcntl(fd, F_GETFL);
    printf("  %-40s accmode %s append %s\n", "fcntl F_GETFL",
           (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "?", flags & O_APPEND ? "yes" : "no");
    close(fd);
    read_file("contents after O_APPEND write", "data.txt");

    fd = open("data.txt", O_RDONLY);
    FAILS("write to an O_RDONLY fd", write(fd, "x", 1));
    close(fd);
    FAILS("open of a missing file", open("missing.txt", O_RDONLY));
    FAILS("open O_WRONLY of a directory", open(".", O_WRONLY));
    FAILS("open O_DIRECTORY of a file", open("data.txt", O_RDONLY | O_DIRECTORY));
}

static void links_and_names(void) {
    printf("names and links:\n");
    write_file("a.txt", "contents of a");
    write_file("b.txt", "contents of b");
    CHECK(link("a.txt", "hard.txt") == 0);
    show_path("a.txt after link", "a.txt", 1);
    FAILS("link onto an existing name", link("a.txt", "b.txt"));

    CHECK(rename("a.txt", "c.txt") == 0);
    show_path("a.txt after rename", "a.txt", 1);
    read_file("c.txt", "c.txt");
    CHECK(rename("c.txt", "b.txt") == 0); /* replaces b.txt */
    read_file("b.txt after rename over it", "b.txt");
    show_path("b.txt", "b.txt", 1);
    FAILS("rename of a missing file", rename("nothing", "else"));

    CHECK(symlink("b.txt", "link.txt") == 0);
    CHECK(symlink("no-such-target", "dangling") == 0);
    char target[64];
    ssize_t n = readlink("link.txt", target, sizeof target);
    printf("  %-40s %ld \"%.*s\"\n", "readlink link.txt", (long)n, (int)(n < 0 ? 0 : n), target);
    n = readlink("link.txt", target, 3);
    printf("  %-40s %ld \"%.*s\"\n", "readlink into 3 bytes", (long)n, (int)(n < 0 ? 0 : n), target);
    FAILS("readlink of a regular file", readlink("b.txt", target, sizeof target));
    show_path("lstat link.txt", "link.txt", 0);
    show_path("stat link.txt", "link.txt", 1);
    show_path("stat dangling", "dangling", 1);
    read_file("read through the symlink", "link.txt");
    CHECK(symlink("loop2", "loop1") == 0);
    CHECK(symlink("loop1", "loop2") == 0);
    FAILS("open of a symlink loop", open("loop1", O_RDONLY));
    FAILS("open O_NOFOLLOW of a symlink", open("link.txt", O_RDONLY | O_NOFOLLOW));

    printf("  %-40s %d\n", "access F_OK b.txt", access("b.txt", F_OK));
    printf("  %-40s %d\n", "access R_OK b.txt", access("b.txt", R_OK));
    FAILS("access F_OK of a missing file", access("missing", F_OK));
    FAILS("access through a file as a directory", access("b.txt/x", F_OK));

    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    FAILS("open of a 299-character name", open(longname, O_RDONLY));

    CHECK(unlink("hard.txt") == 0);
    show_path("b.txt after unlinking its hard link", "b.txt", 1);
    FAILS("unlink of a missing file", unlink("hard.txt"));
    CHECK(unlink("link.txt") == 0 && unlink("dangling") == 0);
    CHECK(unlink("loop1") == 0 && unlink("loop2") == 0);
}

static void directories(void) {
    printf("directories:\n");
    CHECK(mkdir("sub", 0755) == 0);
    FAILS("mkdir of an existing directory", mkdir("sub", 0755));
    FAILS("mkdir under a missing parent", mkdir("missing/sub", 0755));
    CHECK(mkdir("sub/inner", 0700) == 0);
    show_path("sub/inner", "sub/inner", 1);
    for (int i = 9; i >= 0; i--) {
        char name[32];
        snprintf(name, sizeof name, "sub/f%02d", i * 7 % 10);
        write_file(name, name);
    }
    list_dir("readdir sub (sorted)", "sub");
    list_dir("readdir . (sorted)", ".");
    FAILS("rmdir of a non-empty directory", rmdir("sub"));
    FAILS("rmdir of a file", rmdir("sub/f00"));
    FAILS("unlink of a directory", unlink("sub/inner"));

    /* chdir and getcwd: only the tail of the path is printed. */
    char cwd[4096];
    CHECK(chdir("sub/inner") == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    size_t len = strlen(cwd);
    printf("  %-40s %s\n", "getcwd ends with /sub/inner",
           len > 10 && strcmp(cwd + len - 10, "/sub/inner") == 0 ? "yes" : "no");
    write_file("deep.txt", "deep");
    CHECK(chdir("../..") == 0);
    read_file("sub/inner/deep.txt", "sub/inner/deep.txt");
    FAILS("chdir into a file", chdir("b.txt"));

    /* *at calls relative to a directory fd */
    int dfd = open("sub", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    struct stat st;
    CHECK(fstatat(dfd, "inner/deep.txt", &st, 0) == 0);
    show_stat("fstatat(sub, inner/deep.txt)", &st);
    CHECK(unlinkat(dfd, "inner/deep.txt", 0) == 0);
    CHECK(unlinkat(dfd, "inner", AT_REMOVEDIR) == 0);
    CHECK(mkdirat(dfd, "made-at", 0750) == 0);
    CHECK(fstatat(dfd, "made-at", &st, 0) == 0);
    show_stat("mkdirat(sub, made-at)", &st);
    CHECK(unlinkat(dfd, "made-at", AT_REMOVEDIR) == 0);
    close(dfd);

    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "sub/f%02d", i);
        CHECK(unlink(name) == 0);
    }
    CHECK(rmdir("sub") == 0);
    show_path("sub after rmdir", "sub", 1);
}

static void descriptors(void) {
    printf("descriptors:\n");
    int fd = open("b.txt", O_RDONLY);
    CHECK(fd >= 0);
    int d1 = dup(fd);
    printf("  %-40s %s\n", "dup gives another descriptor", d1 >= 0 && d1 != fd ? "yes" : "no");
    char c;
    CHECK(read(fd, &c, 1) == 1);
    printf("  %-40s %ld\n", "offset shared with the dup", (long)lseek(d1, 0, SEEK_CUR));
    int target = fd + 20;
    printf("  %-40s %s\n", "dup2 to a chosen number", dup2(fd, target) == target ? "yes" : "no");
    printf("  %-40s %s\n", "dup2 onto itself", dup2(fd, fd) == fd ? "yes" : "no");
    FAILS("dup3 onto itself", dup3(fd, fd, O_CLOEXEC));
    FAILS("dup2 of a bad fd", dup2(-1, target));
    printf("  %-40s %d\n", "F_GETFD of a dup", fcntl(d1, F_GETFD));
    int d2 = dup3(fd, target + 1, O_CLOEXEC);
    printf("  %-40s %s\n", "dup3 O_CLOEXEC: FD_CLOEXEC set",
           d2 == target + 1 && fcntl(d2, F_GETFD) == FD_CLOEXEC ? "yes" : "no");
    CHECK(fcntl(d2, F_SETFD, 0) == 0);
    printf("  %-40s %d\n", "F_GETFD after F_SETFD 0", fcntl(d2, F_GETFD));
    int d3 = fcntl(fd, F_DUPFD, target + 5);
    printf("  %-40s %s\n", "F_DUPFD returns >= the minimum", d3 >= target + 5 ? "yes" : "no");
    int d4 = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    printf("  %-40s %d\n", "F_DUPFD_CLOEXEC then F_GETFD", fcntl(d4, F_GETFD));
    close(d1);
    close(d2);
    close(d3);
    close(d4);
    close(target);
    close(fd);
    FAILS("fcntl F_GETFD of a closed fd", fcntl(d1, F_GETFD));

    int p[2];
    CHECK(pipe(p) == 0);
    printf("  %-40s %ld\n", "write 5 to a pipe", (long)write(p[1], "piped", 5));
    char buf[16] = {0};
    printf("  %-40s %ld \"%s\"\n", "read from the pipe", (long)read(p[0], buf, sizeof buf), buf);
    FAILS("lseek on a pipe", lseek(p[0], 0, SEEK_CUR));
    CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) == 0);
    printf("  %-40s %s\n", "O_NONBLOCK set", fcntl(p[0], F_GETFL) & O_NONBLOCK ? "yes" : "no");
    FAILS("read of an empty non-blocking pipe", read(p[0], buf, 1));
    struct stat st;
    CHECK(fstat(p[0], &st) == 0);
    printf("  %-40s %s\n", "fstat of a pipe", type_name(st.st_mode));
    close(p[1]);
    printf("  %-40s %ld\n", "read after the writer closed (EOF)", (long)read(p[0], buf, 1));
    close(p[0]);

    CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    printf("  %-40s cloexec %s nonblock %s\n", "pipe2(O_CLOEXEC|O_NONBLOCK)",
           fcntl(p[0], F_GETFD) & FD_CLOEXEC ? "yes" : "no",
           fcntl(p[1], F_GETFL) & O_NONBLOCK ? "yes" : "no");
    close(p[0]);
    /* Writing to a pipe with no reader: EPIPE (SIGPIPE ignored here). */
    signal(SIGPIPE, SIG_IGN);
    FAILS("write to a pipe with no reader", write(p[1], "x", 1));
    close(p[1]);
}

int main(int argc, char **argv) {
    printf("files_dirs on %s\n", GUEST_ARCH);
    umask(022);
    char dir_buf[64];
    const char *dir = argc > 1 ? argv[1] : NULL;
    if (dir == NULL) {
        strcpy(dir_buf, "/tmp/files_dirs.XXXXXX");
        dir = mkdtemp(dir_buf);
        CHECK(dir != NULL);
    }
    /* Work in a fresh subdirectory, so that listing "." shows only our names. */
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    CHECK(mkdir("files_dirs.work", 0755) == 0);
    CHECK(chdir("files_dirs.work") == 0);

    files();
    links_and_names();
    directories();
    descriptors();

    CHECK(unlink("data.txt") == 0);
    CHECK(unlink("b.txt") == 0);
    list_dir("left at the end", ".");
    CHECK(chdir("..") == 0);
    CHECK(rmdir("files_dirs.work") == 0);
    CHECK(chdir(cwd) == 0);
    if (argc <= 1)
        CHECK(rmdir(dir) == 0);
    return guest_exit_status("files_dirs");
}
