/* float_fenv: floating point under all four rounding modes, and its flags.
 *
 * For each rounding mode set with fesetround (to nearest, upward, downward,
 * toward zero): arithmetic (+ - * / on double and float), sqrt, fma,
 * conversions, and libm (exp, log, sin, cos, pow, floor, ceil, rint, lrint,
 * nearbyint). Results are kept and printed afterwards, under round-to-nearest,
 * as %a, %.17g and the raw bits; then printf itself (which glibc rounds in the
 * current mode) is shown in each mode. Last, each exception flag (inexact,
 * underflow, overflow, divbyzero, invalid) is raised by an operation and read
 * back with fetestexcept, along with operations that must raise none.
 *
 * Every operand is volatile and every result is stored to a volatile before
 * the next fenv call, so the operation happens at run time, in the mode and
 * between the flag reads where it is written (-frounding-math as well), and
 * a*b+c is not contracted into an fma (-ffp-contract=off). */
#include <fenv.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"

/* guest-cflags: -frounding-math -ffp-contract=off -lm */

static volatile double one = 1.0, two = 2.0, three = 3.0, ten = 10.0, zero = 0.0;
static volatile double tenth = 0.1, fifth = 0.2, big = 1e308, huge = DBL_MAX, tiny = DBL_MIN;
static volatile double half_up = 2.5, neg_half_up = -2.5, three_half = 3.5, e_arg = 1.0;
static volatile double pow_x = 2.5, pow_y = 3.3, trig = 1.0, trig_big = 1e6, minus_one = -1.0;
static volatile double fma_a = 0x1.0000000000001p0, fma_b = 0x1.fffffffffffffp-1, fma_c = -1.0;
static volatile float fone = 1.0f, fthree = 3.0f, fbig = FLT_MAX;
static volatile int64_t big_int = (INT64_C(1) << 53) + 1;
static volatile double inf_v = INFINITY, thousand = 1000.0;
static volatile double nan_v = NAN;

static const struct {
    int mode;
    const char *name;
} MODES[] = {
    {FE_TONEAREST, "to-nearest"},
    {FE_UPWARD, "upward"},
    {FE_DOWNWARD, "downward"},
    {FE_TOWARDZERO, "toward-zero"},
};
#define NMODES 4

#define NRESULTS 40
static const char *result_names[NRESULTS];
static double results[NMODES][NRESULTS];

static uint64_t bits64(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static uint32_t bits32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Compute everything in the current rounding mode into row[]. */
static int compute(double *row) {
    int n = 0;
    volatile double r;
    volatile float f;
#define KEEP(name, expr)                                                                   \
    do {                                                                                   \
        r = (expr);                                                                        \
        result_names[n] = name;                                                            \
        row[n++] = r;                                                                      \
    } while (0)
#define KEEPF(name, expr)                                                                  \
    do {                                                                                   \
        f = (expr);                                                                        \
        result_names[n] = name;                                                            \
        row[n++] = f;                                                                      \
    } while (0)
    KEEP("1/3", one / three);
    KEEP("-1/3", -one / three);
    KEEP("2/3", two / three);
    KEEP("0.1+0.2", tenth + fifth);
    KEEP("0.1*3", tenth * three);
    KEEP("1-0.1", one - tenth);
    KEEP("1e308*10", big * ten);
    KEEP("-1e308*10", -big * ten);
    KEEP("DBL_MIN/3", tiny / three);
    KEEP("-DBL_MIN/3", -tiny / three);
    KEEP("sqrt(2)", sqrt(two));
    KEEP("sqrt(3)", sqrt(three));
    KEEP("fma", fma(fma_a, fma_b, fma_c));
    KEEP("a*b+c", fma_a * fma_b + fma_c);
    KEEPF("1f/3f", fone / fthree);
    KEEPF("FLT_MAX*3f", fbig * fthree);
    KEEPF("(float)(1/3)", (float)(one / three));
    KEEPF("sqrtf(3)", sqrtf(fthree));
    KEEP("(double)(2^53+1)", (double)big_int);
    KEEPF("(float)(2^53+1)", (float)big_int);
    KEEP("exp(1)", exp(e_arg));
    KEEP("log(10)", log(ten));
    KEEP("sin(1)", sin(trig));
    KEEP("cos(1)", cos(trig));
    KEEP("sin(1e6)", sin(trig_big));
    KEEP("pow(2.5,3.3)", pow(pow_x, pow_y));
    KEEP("floor(-2.5)", floor(neg_half_up));
    KEEP("ceil(-2.5)", ceil(neg_half_up));
    KEEP("floor(2.5)", floor(half_up));
    KEEP("ceil(2.5)", ceil(half_up));
    KEEP("rint(2.5)", rint(half_up));
    KEEP("rint(-2.5)", rint(neg_half_up));
    KEEP("rint(3.5)", rint(three_half));
    KEEP("nearbyint(2.5)", nearbyint(half_up));
    KEEP("nearbyint(-2.5)", nearbyint(neg_half_up));
    KEEP("lrint(2.5)", (double)lrint(half_up));
    KEEP("lrint(-3.5)", (double)lrint(-three_half));
    KEEP("llrint(3.5)", (double)llrint(three_half));
    KEEP("(long)-2.5", (double)(long)neg_half_up);
    KEEP("round(-2.5)", round(neg_half_up));
#undef KEEP
#undef KEEPF
    return n;
}

static void flags_line(const char *what, int flags) {
    printf("  %-22s %c%c%c%c%c\n", what, flags & FE_INEXACT ? 'x' : '-',
           flags & FE_UNDERFLOW ? 'u' : '-', flags & FE_OVERFLOW ? 'o' : '-',
           flags & FE_DIVBYZERO ? 'z' : '-', flags & FE_INVALID ? 'i' : '-');
}

/* Run one statement with clear flags and print the flags it left. */
#define FLAGS(what, stmt)                                                                  \
    do {                                                                                   \
        feclearexcept(FE_ALL_EXCEPT);                                                      \
        stmt;                                                                              \
        flags_line(what, fetestexcept(FE_ALL_EXCEPT));                                     \
    } while (0)

static void exception_flags(void) {
    volatile double d;
    volatile float f;
    volatile long l;
    volatile int b;
    printf("exception flags (x inexact, u underflow, o overflow, z divbyzero, i invalid):\n");
    FLAGS("1+1", d = one + one);
    FLAGS("1/3", d = one / three);
    FLAGS("DBL_MIN/2 (exact)", d = tiny / two);
    FLAGS("DBL_MIN/3", d = tiny / three);
    FLAGS("DBL_MAX*2", d = huge * two);
    FLAGS("FLT_MAX*3f", f = fbig * fthree);
    FLAGS("(float)1e308", f = (float)big);
    FLAGS("1/0", d = one / zero);
    FLAGS("-1/0", d = -one / zero);
    FLAGS("0/0", d = zero / zero);
    FLAGS("inf-inf", d = inf_v - inf_v);
    FLAGS("inf*0", d = inf_v * zero);
    FLAGS("sqrt(-1)", d = sqrt(minus_one));
    FLAGS("log(0)", d = log(zero));
    FLAGS("log(-1)", d = log(minus_one));
    FLAGS("exp(1000)", d = exp(thousand));
    FLAGS("fma(inf,0,nan)", d = fma(inf_v, zero, nan_v));
    FLAGS("nan+1 (quiet)", d = nan_v + one);
    FLAGS("nan==nan (quiet)", b = (nan_v == nan_v));
    FLAGS("nan<1 (signaling)", b = (nan_v < one));
    FLAGS("isless(nan,1)", b = isless(nan_v, one));
    FLAGS("lrint(nan)", l = lrint(nan_v));
    FLAGS("(long)1e300", l = (long)big);
    FLAGS("rint(2.5)", d = rint(half_up));
    FLAGS("nearbyint(2.5)", d = nearbyint(half_up));
    FLAGS("floor(2.5)", d = floor(half_up));
    FLAGS("feraiseexcept(o|z)", feraiseexcept(FE_OVERFLOW | FE_DIVBYZERO));
    (void)d;
    (void)f;
    (void)l;
    (void)b;

    /* Sticky flags accumulate until cleared; fegetexceptflag/fesetexceptflag round-trip. */
    feclearexcept(FE_ALL_EXCEPT);
    d = one / three;
    d = huge * two;
    fexcept_t saved;
    fegetexceptflag(&saved, FE_ALL_EXCEPT);
    feclearexcept(FE_ALL_EXCEPT);
    flags_line("cleared", fetestexcept(FE_ALL_EXCEPT));
    fesetexceptflag(&saved, FE_ALL_EXCEPT);
    flags_line("restored (1/3, *2)", fetestexcept(FE_ALL_EXCEPT));
    CHECK(fetestexcept(FE_ALL_EXCEPT) == (FE_INEXACT | FE_OVERFLOW));
    feclearexcept(FE_ALL_EXCEPT);
}

int main(void) {
    printf("float_fenv on %s\n", GUEST_ARCH);
    CHECK(fegetround() == FE_TONEAREST);

    int n = 0;
    for (int m = 0; m < NMODES; m++) {
        CHECK(fesetround(MODES[m].mode) == 0);
        CHECK(fegetround() == MODES[m].mode);
        n = compute(results[m]);
    }
    fesetround(FE_TONEAREST);

    for (int i = 0; i < n; i++) {
        printf("%s:\n", result_names[i]);
        for (int m = 0; m < NMODES; m++) {
            double v = results[m][i];
            printf("  %-12s %-24a %-24.17g %.6e %016" PRIx64 "\n", MODES[m].name, v, v, v,
                   bits64(v));
        }
    }
    printf("float bits: 1f/3f %08" PRIx32 " sqrtf(3) %08" PRIx32 " nanf %08" PRIx32 "\n",
           bits32((float)(fone / fthree)), bits32(sqrtf(fthree)),
           bits32((float)(nan_v + one)));
    printf("nan bits: 0/0 %016" PRIx64 " sqrt(-1) %016" PRIx64 "\n", bits64(zero / zero),
           bits64(sqrt(minus_one)));

    /* glibc's printf rounds decimal output in the current rounding mode. */
    printf("printf in each mode:\n");
    for (int m = 0; m < NMODES; m++) {
        fesetround(MODES[m].mode);
        double v = one / three;
        char line[160];
        snprintf(line, sizeof line, "%.3f %.3f %.0f %.0f %.2e %g", v, -v, (double)half_up,
                 (double)neg_half_up, 2.0 / 3.0 * ten, (double)tenth);
        fesetround(FE_TONEAREST);
        printf("  %-12s %s\n", MODES[m].name, line);
    }

    exception_flags();

    /* Known answers: a wrong emulator fails even without a reference. */
    CHECK(results[0][0] == 0x1.5555555555555p-2);
    CHECK(results[1][0] == 0x1.5555555555556p-2);
    CHECK(results[2][0] == 0x1.5555555555555p-2);
    CHECK(isinf(results[0][6]) && results[3][6] == DBL_MAX);
    CHECK(results[0][30] == 2.0 && results[1][30] == 3.0 && results[2][30] == 2.0);
    return guest_exit_status("float_fenv");
}
