/* smc: self-modifying code, as a guest JIT writes it. Code is written into an RWX page,
 * run, rewritten in place (same address), made visible with __builtin___clear_cache (on
 * riscv64 Linux: the riscv_flush_icache syscall) and run again, also after it has been called
 * often enough to be compiled. Each result must come from the code as last written. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "guest.h"

typedef long (*fn_t)(long);

#if defined(__riscv)
static void emit(uint32_t *code, int k) {
    code[0] = 0x00050513u | ((uint32_t)(k & 0xfff) << 20); /* addi a0, a0, k */
    code[1] = 0x00008067u;                                  /* ret */
}
#elif defined(__aarch64__)
static void emit(uint32_t *code, int k) {
    code[0] = 0x91000000u | ((uint32_t)(k & 0xfff) << 10); /* add x0, x0, #k */
    code[1] = 0xd65f03c0u;                                  /* ret */
}
#else
static void emit(uint32_t *code, int k) {
    unsigned char *c = (unsigned char *)code; /* lea rax, [rdi + k]; ret */
    c[0] = 0x48; c[1] = 0x8d; c[2] = 0x87;
    c[3] = k & 0xff; c[4] = (k >> 8) & 0xff; c[5] = 0; c[6] = 0; c[7] = 0xc3;
}
#endif

int main(void) {
    uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(code != MAP_FAILED);
    long total = 0;
    for (int k = 1; k <= 5; k++) {
        emit(code, k * 100);
        __builtin___clear_cache((char *)code, (char *)(code + 4));
        long r = ((fn_t)code)(5);
        total += r;
        printf("rewritten %d times: f(5) = %ld\n", k, r);
    }
    /* a loop calling the code many times, so it is hot (compiled) before the next rewrite */
    long sum = 0;
    for (int i = 0; i < 20000; i++)
        sum += ((fn_t)code)(i);
    printf("hot calls: sum = %ld\n", sum);
    emit(code, 7);
    __builtin___clear_cache((char *)code, (char *)(code + 4));
    printf("after the hot loop, rewritten: f(5) = %ld\n", ((fn_t)code)(5));
    printf("total %ld\n", total);
    return guest_exit_status("smc");
}
