/* int_m: integer and M-extension edge cases, every result in hex.
 *
 * For each pair of 16 edge-case values: 64-bit add/sub/mul (wrapping),
 * comparisons, high multiplies through __int128 (mulh, mulhsu, mulhu),
 * division and remainder, and the 32-bit "word" forms through int32
 * arithmetic (addw, subw, mulw, divw, divuw, remw, remuw). Shifts by edge
 * amounts, extensions, bit counts and byte swaps follow.
 *
 * Division by zero and INT_MIN / -1 are undefined in C, so those go through
 * the architecture's own instruction (inline asm) where it has one that does
 * not trap (RISC-V: div by 0 gives -1, rem by 0 gives the dividend; AArch64:
 * 0); on x86_64 they trap, so they are skipped there. On RISC-V the M
 * instructions are also run directly in asm on every pair, and shifts by
 * amounts >= the width show that only the low 6 (or 5) bits count. */
#include <inttypes.h>
#include <stdio.h>

#include "guest.h"

#define H "%016" PRIx64

static const uint64_t VALUES[] = {
    0,
    1,
    2,
    7,
    UINT64_C(0xffffffffffffffff), /* -1 */
    UINT64_C(0xfffffffffffffffe), /* -2 */
    UINT64_C(0xfffffffffffffff9), /* -7 */
    UINT64_C(0x000000007fffffff), /* INT32_MAX */
    UINT64_C(0x0000000080000000),
    UINT64_C(0x00000000ffffffff),
    UINT64_C(0xffffffff80000000), /* INT32_MIN */
    UINT64_C(0x0000000100000000),
    UINT64_C(0x7fffffffffffffff), /* INT64_MAX */
    UINT64_C(0x8000000000000000), /* INT64_MIN */
    UINT64_C(0x123456789abcdef0),
    UINT64_C(0xfedcba9876543211),
};
#define NVALUES (sizeof VALUES / sizeof VALUES[0])

/* --- division through the instruction, where C leaves it undefined -------- */

static int have_div_edges(void) {
#if defined(__x86_64__)
    return 0; /* idiv traps (#DE) on both edges */
#else
    return 1;
#endif
}

static int div_is_defined_in_c(int64_t a, int64_t b) {
    return b != 0 && !(a == INT64_MIN && b == -1);
}

static int divw_is_defined_in_c(int32_t a, int32_t b) {
    return b != 0 && !(a == INT32_MIN && b == -1);
}

static uint64_t div_s64(int64_t a, int64_t b) {
#if defined(__riscv)
    int64_t r;
    __asm__("div %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#elif defined(__aarch64__)
    int64_t r;
    __asm__("sdiv %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#else
    return div_is_defined_in_c(a, b) ? (uint64_t)(a / b) : 0;
#endif
}

static uint64_t div_u64(uint64_t a, uint64_t b) {
#if defined(__riscv)
    uint64_t r;
    __asm__("divu %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#elif defined(__aarch64__)
    uint64_t r;
    __asm__("udiv %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return b ? a / b : 0;
#endif
}

static uint64_t rem_s64(int64_t a, int64_t b) {
#if defined(__riscv)
    int64_t r;
    __asm__("rem %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#else
    /* What AArch64 compilers emit: a - (a / b) * b, wrapping. */
    return (uint64_t)a - div_s64(a, b) * (uint64_t)b;
#endif
}

static uint64_t rem_u64(uint64_t a, uint64_t b) {
#if defined(__riscv)
    uint64_t r;
    __asm__("remu %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return a - div_u64(a, b) * b;
#endif
}

static uint64_t divw_s(int32_t a, int32_t b) {
#if defined(__riscv)
    int64_t r;
    __asm__("divw %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#elif defined(__aarch64__)
    int32_t r;
    __asm__("sdiv %w0, %w1, %w2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)(int64_t)r;
#else
    return divw_is_defined_in_c(a, b) ? (uint64_t)(int64_t)(a / b) : 0;
#endif
}

static uint64_t divw_u(uint32_t a, uint32_t b) {
#if defined(__riscv)
    int64_t r;
    __asm__("divuw %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#else
    /* RISC-V's convention for the 64-bit result: the 32-bit value sign-extended. */
    uint32_t q = b ? a / b : UINT32_MAX;
#if defined(__aarch64__)
    __asm__("udiv %w0, %w1, %w2" : "=r"(q) : "r"(a), "r"(b));
#endif
    return (uint64_t)(int64_t)(int32_t)q;
#endif
}

static uint64_t remw_s(int32_t a, int32_t b) {
#if defined(__riscv)
    int64_t r;
    __asm__("remw %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#else
    int32_t q = (int32_t)divw_s(a, b);
    return (uint64_t)(int64_t)(int32_t)((uint32_t)a - (uint32_t)q * (uint32_t)b);
#endif
}

static uint64_t remw_u(uint32_t a, uint32_t b) {
#if defined(__riscv)
    int64_t r;
    __asm__("remuw %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return (uint64_t)r;
#else
    uint32_t q = (uint32_t)divw_u(a, b);
    return (uint64_t)(int64_t)(int32_t)(a - q * b);
#endif
}

/* --- the pairs ------------------------------------------------------------ */

static void pair(uint64_t ua, uint64_t ub) {
    uint64_t a = OPAQUE(ua), b = OPAQUE(ub);
    int64_t sa = (int64_t)a, sb = (int64_t)b;
    int32_t wa = (int32_t)a, wb = (int32_t)b;

    printf("a=" H " b=" H "\n", a, b);
    printf("  add=" H " sub=" H " mul=" H " slt=%d sltu=%d\n", a + b, a - b, a * b,
           sa < sb, a < b);
    printf("  mulh=" H " mulhsu=" H " mulhu=" H "\n",
           (uint64_t)(((__int128)sa * (__int128)sb) >> 64),
           (uint64_t)(((__int128)sa * (__int128)(unsigned __int128)b) >> 64),
           (uint64_t)(((unsigned __int128)a * (unsigned __int128)b) >> 64));
    if (div_is_defined_in_c(sa, sb) || have_div_edges())
        printf("  div=" H " rem=" H, div_s64(sa, sb), rem_s64(sa, sb));
    else
        printf("  div=trap rem=trap");
    if (b || have_div_edges())
        printf(" divu=" H " remu=" H "\n", div_u64(a, b), rem_u64(a, b));
    else
        printf(" divu=trap remu=trap\n");
    printf("  addw=" H " subw=" H " mulw=" H "\n",
           (uint64_t)(int64_t)(int32_t)((uint32_t)wa + (uint32_t)wb),
           (uint64_t)(int64_t)(int32_t)((uint32_t)wa - (uint32_t)wb),
           (uint64_t)(int64_t)(int32_t)((uint32_t)wa * (uint32_t)wb));
    if (divw_is_defined_in_c(wa, wb) || have_div_edges())
        printf("  divw=" H " remw=" H, divw_s(wa, wb), remw_s(wa, wb));
    else
        printf("  divw=trap remw=trap");
    if ((uint32_t)wb || have_div_edges())
        printf(" divuw=" H " remuw=" H "\n", divw_u((uint32_t)a, (uint32_t)b),
               remw_u((uint32_t)a, (uint32_t)b));
    else
        printf(" divuw=trap remuw=trap\n");

    /* The same through plain C where C defines it (the compiler's own choice
     * of instructions), checked against the instruction-level results. */
    if (div_is_defined_in_c(sa, sb)) {
        CHECK((uint64_t)(sa / sb) == div_s64(sa, sb));
        CHECK((uint64_t)(sa % sb) == rem_s64(sa, sb));
    }
    if (b) {
        CHECK(a / b == div_u64(a, b));
        CHECK(a % b == rem_u64(a, b));
    }
    if (divw_is_defined_in_c(wa, wb)) {
        CHECK((uint64_t)(int64_t)(wa / wb) == divw_s(wa, wb));
        CHECK((uint64_t)(int64_t)(wa % wb) == remw_s(wa, wb));
    }

#if defined(__riscv)
    uint64_t mulh, mulhsu, mulhu, mulw;
    __asm__("mulh %0, %1, %2" : "=r"(mulh) : "r"(a), "r"(b));
    __asm__("mulhsu %0, %1, %2" : "=r"(mulhsu) : "r"(a), "r"(b));
    __asm__("mulhu %0, %1, %2" : "=r"(mulhu) : "r"(a), "r"(b));
    __asm__("mulw %0, %1, %2" : "=r"(mulw) : "r"(a), "r"(b));
    CHECK(mulh == (uint64_t)(((__int128)sa * (__int128)sb) >> 64));
    CHECK(mulhsu == (uint64_t)(((__int128)sa * (__int128)(unsigned __int128)b) >> 64));
    CHECK(mulhu == (uint64_t)(((unsigned __int128)a * (unsigned __int128)b) >> 64));
    CHECK(mulw == (uint64_t)(int64_t)(int32_t)((uint32_t)wa * (uint32_t)wb));
    /* divw/remw read only the low 32 bits of their (64-bit) sources. */
    uint64_t divw_full, remuw_full;
    __asm__("divw %0, %1, %2" : "=r"(divw_full) : "r"(a), "r"(b));
    __asm__("remuw %0, %1, %2" : "=r"(remuw_full) : "r"(a), "r"(b));
    CHECK(divw_full == divw_s(wa, wb));
    CHECK(remuw_full == remw_u((uint32_t)a, (uint32_t)b));
#endif
}

/* --- shifts, extensions, bit operations ------------------------------------ */

static void shifts(uint64_t ua) {
    static const unsigned AMOUNTS[] = {0, 1, 7, 31, 32, 33, 63};
    uint64_t a = OPAQUE(ua);
    printf("shifts a=" H "\n", a);
    for (unsigned i = 0; i < sizeof AMOUNTS / sizeof AMOUNTS[0]; i++) {
        unsigned s = OPAQUE(AMOUNTS[i]);
        printf("  s=%2u sll=" H " srl=" H " sra=" H, s, a << s, a >> s,
               (uint64_t)((int64_t)a >> s));
        if (s < 32) {
            uint32_t w = (uint32_t)a;
            printf(" sllw=" H " srlw=" H " sraw=" H,
                   (uint64_t)(int64_t)(int32_t)(w << s),
                   (uint64_t)(int64_t)(int32_t)(w >> s),
                   (uint64_t)(int64_t)((int32_t)w >> s));
        }
        printf("\n");
    }
#if defined(__riscv)
    /* Register shift amounts: only the low 6 bits (5 for the w forms) count. */
    static const uint64_t BIG[] = {64, 65, 127, UINT64_C(0xffffffffffffffff), 0x1000000020};
    for (unsigned i = 0; i < sizeof BIG / sizeof BIG[0]; i++) {
        uint64_t s = OPAQUE(BIG[i]), sll, srl, sra, sllw, srlw, sraw;
        __asm__("sll %0, %1, %2" : "=r"(sll) : "r"(a), "r"(s));
        __asm__("srl %0, %1, %2" : "=r"(srl) : "r"(a), "r"(s));
        __asm__("sra %0, %1, %2" : "=r"(sra) : "r"(a), "r"(s));
        __asm__("sllw %0, %1, %2" : "=r"(sllw) : "r"(a), "r"(s));
        __asm__("srlw %0, %1, %2" : "=r"(srlw) : "r"(a), "r"(s));
        __asm__("sraw %0, %1, %2" : "=r"(sraw) : "r"(a), "r"(s));
        printf("  asm s=" H " sll=" H " srl=" H " sra=" H " sllw=" H " srlw=" H " sraw=" H "\n",
               s, sll, srl, sra, sllw, srlw, sraw);
    }
#endif
}

static void bits(uint64_t ua) {
    uint64_t a = OPAQUE(ua);
    printf("bits a=" H " sext8=" H " zext8=" H " sext16=" H " zext16=" H " sext32=" H
           " zext32=" H "\n",
           a, (uint64_t)(int64_t)(int8_t)a, (uint64_t)(uint8_t)a, (uint64_t)(int64_t)(int16_t)a,
           (uint64_t)(uint16_t)a, (uint64_t)(int64_t)(int32_t)a, (uint64_t)(uint32_t)a);
    printf("  clz=%d ctz=%d popcount=%d parity=%d bswap=" H " bswap32=%08" PRIx32 "\n",
           a ? __builtin_clzll(a) : 64, a ? __builtin_ctzll(a) : 64, __builtin_popcountll(a),
           __builtin_parityll(a), __builtin_bswap64(a), __builtin_bswap32((uint32_t)a));
    int64_t sum;
    int64_t prod;
    int add_ov = __builtin_add_overflow((int64_t)a, INT64_MAX, &sum);
    int mul_ov = __builtin_mul_overflow((int64_t)a, (int64_t)3, &prod);
    printf("  add_ov=%d sum=" H " mul_ov=%d prod=" H "\n", add_ov, (uint64_t)sum, mul_ov,
           (uint64_t)prod);
}

int main(void) {
    printf("int_m on %s\n", GUEST_ARCH);
    for (unsigned i = 0; i < NVALUES; i++)
        for (unsigned j = 0; j < NVALUES; j++)
            pair(VALUES[i], VALUES[j]);
    for (unsigned i = 0; i < NVALUES; i++)
        shifts(VALUES[i]);
    for (unsigned i = 0; i < NVALUES; i++)
        bits(VALUES[i]);

    /* Known answers, so that a wrong emulator fails even without a reference. */
#if defined(__riscv)
    CHECK(div_s64(OPAQUE(INT64_C(5)), OPAQUE(INT64_C(0))) == UINT64_MAX);
    CHECK(rem_s64(OPAQUE(INT64_C(5)), OPAQUE(INT64_C(0))) == 5);
    CHECK(div_s64(OPAQUE(INT64_MIN), OPAQUE(INT64_C(-1))) == (uint64_t)INT64_MIN);
    CHECK(rem_s64(OPAQUE(INT64_MIN), OPAQUE(INT64_C(-1))) == 0);
    CHECK(divw_s(OPAQUE(INT32_MIN), OPAQUE(-1)) == (uint64_t)(int64_t)INT32_MIN);
    CHECK(divw_u(OPAQUE(UINT32_C(5)), OPAQUE(UINT32_C(0))) == UINT64_MAX);
#endif
    CHECK((uint64_t)(((unsigned __int128)OPAQUE(UINT64_MAX) * UINT64_MAX) >> 64) ==
          UINT64_MAX - 1);
    return guest_exit_status("int_m");
}
