/* args_env_auxv: what the kernel (or the emulator) hands a new process.
 *
 *     args_env_auxv [--env=NAME]... [ARG]...
 *
 * Prints argc, the basename of argv[0], every other argument (quoted, so that
 * empty and spaced arguments show), the value of each environment variable
 * named with --env=NAME (or "unset"), and facts from the auxiliary vector:
 * AT_PAGESZ and AT_CLKTCK as numbers; AT_RANDOM, AT_PHDR, AT_ENTRY present
 * (booleans); AT_PHNUM and AT_PHENT against the program's own headers;
 * AT_UID/AT_EUID/AT_GID/AT_EGID against the getuid() family; AT_SECURE;
 * AT_EXECFN's basename; AT_HWCAP masked to the base-ISA bits that both qemu
 * and our emulator report (for RISC-V the letters I M A F D C). Then
 * getpid() > 0, uname's sysname and machine, and that the stack and the
 * environment are where the ABI says (argv[argc] is NULL, envp follows it). */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "guest.h"

extern char **environ;

#if defined(__riscv)
#define HWCAP_LETTER(c) (1ul << ((c) - 'A'))
#define HWCAP_AGREED                                                                       \
    (HWCAP_LETTER('I') | HWCAP_LETTER('M') | HWCAP_LETTER('A') | HWCAP_LETTER('F') |      \
     HWCAP_LETTER('D') | HWCAP_LETTER('C'))
#elif defined(__aarch64__)
#define HWCAP_AGREED ((1ul << 0) | (1ul << 1)) /* FP, ASIMD */
#else
#define HWCAP_AGREED ((1ul << 0) | (1ul << 25) | (1ul << 26)) /* CPUID.1:EDX FPU SSE SSE2 */
#endif

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *yes_no(int b) { return b ? "yes" : "no"; }

int main(int argc, char **argv, char **envp) {
    printf("args_env_auxv on %s\n", GUEST_ARCH);
    printf("argc: %d\n", argc);
    printf("argv[0] basename: %s\n", base_name(argv[0]));
    printf("argv[argc] is NULL: %s\n", yes_no(argv[argc] == NULL));
    printf("envp follows argv: %s\n", yes_no(envp == argv + argc + 1));
    printf("environ is envp: %s\n", yes_no(environ == envp));
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--env=", 6) == 0) {
            const char *value = getenv(argv[i] + 6);
            if (value)
                printf("env %s: \"%s\"\n", argv[i] + 6, value);
            else
                printf("env %s: unset\n", argv[i] + 6);
        } else {
            printf("argv[%d]: \"%s\" (%zu bytes)\n", i, argv[i], strlen(argv[i]));
        }
    }

    printf("AT_PAGESZ: %lu\n", getauxval(AT_PAGESZ));
    printf("AT_CLKTCK: %lu\n", getauxval(AT_CLKTCK));
    printf("AT_RANDOM present: %s\n", yes_no(getauxval(AT_RANDOM) != 0));
    printf("AT_PHDR present: %s\n", yes_no(getauxval(AT_PHDR) != 0));
    printf("AT_ENTRY present: %s\n", yes_no(getauxval(AT_ENTRY) != 0));

    /* AT_PHDR points at this program's own headers: PT_LOAD and PT_TLS are there. */
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    int loads = 0;
    for (unsigned long i = 0; phdr && i < phnum; i++)
        loads += phdr[i].p_type == PT_LOAD;
    printf("AT_PHENT is sizeof(Phdr): %s\n", yes_no(getauxval(AT_PHENT) == sizeof(ElfW(Phdr))));
    printf("AT_PHNUM > 0 and PT_LOAD segments found: %s\n", yes_no(phnum > 0 && loads > 0));

    /* The 16 AT_RANDOM bytes are readable (their values are not printed). */
    const unsigned char *random_bytes = (const unsigned char *)getauxval(AT_RANDOM);
    unsigned sum = 0;
    for (int i = 0; random_bytes && i < 16; i++)
        sum += random_bytes[i];
    (void)sum;

    printf("AT_UID is getuid(): %s\n", yes_no(getauxval(AT_UID) == getuid()));
    printf("AT_EUID is geteuid(): %s\n", yes_no(getauxval(AT_EUID) == geteuid()));
    printf("AT_GID is getgid(): %s\n", yes_no(getauxval(AT_GID) == getgid()));
    printf("AT_EGID is getegid(): %s\n", yes_no(getauxval(AT_EGID) == getegid()));
    printf("AT_SECURE: %lu\n", getauxval(AT_SECURE));
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN basename: %s\n", execfn ? base_name(execfn) : "(none)");

    unsigned long hwcap = getauxval(AT_HWCAP);
    printf("AT_HWCAP & %#lx: %#lx\n", (unsigned long)HWCAP_AGREED, hwcap & HWCAP_AGREED);
#if defined(__riscv)
    printf("AT_HWCAP letters:");
    for (char c = 'A'; c <= 'Z'; c++)
        if (hwcap & HWCAP_AGREED & HWCAP_LETTER(c))
            printf(" %c", c);
    printf("\n");
#endif

    printf("getpid() > 0: %s\n", yes_no(getpid() > 0));
    printf("getppid() > 0: %s\n", yes_no(getppid() > 0));
    struct utsname u;
    CHECK(uname(&u) == 0);
    printf("uname sysname: %s\n", u.sysname);
    printf("uname machine: %s\n", u.machine);

    printf("argv strings are on the stack above argv: %s\n",
           yes_no((uintptr_t)argv[0] > (uintptr_t)argv));
    CHECK(getauxval(AT_PAGESZ) == (unsigned long)sysconf(_SC_PAGESIZE));
    CHECK(argv[argc] == NULL);
    return guest_exit_status("args_env_auxv");
}
