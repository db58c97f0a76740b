/* alarm_timer: SIGALRM from alarm() and setitimer(ITIMER_REAL).
 *
 * - alarm(1) then pause(): the handler runs, pause answers EINTR;
 * - alarm(10) then alarm(0): the second call answers the 10 seconds left;
 * - setitimer (200 ms, then every 20 ms): read back at once with getitimer, SIGALRMs taken
 *   with sigsuspend, the interval read back, and zero after it is disarmed;
 * - sleep(5) cut short by an alarm one second in: the handler runs and sleep answers the
 *   seconds left (about 4);
 * - a SIGALRM blocked while the timer fires stays pending and runs on unblock;
 * - with SIGALRM's default action, a computing process dies by SIGALRM (in a child);
 * - getitimer/setitimer with an unknown timer: EINVAL. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

static volatile sig_atomic_t alarms;
static volatile unsigned long sink;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void set_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("alarm_timer on %s\n", GUEST_ARCH);
    set_handler();

    alarm(1);
    errno = 0;
    int rc = pause();
    printf("alarm(1) + pause: %d %s, handler ran %d\n", rc, errno == EINTR ? "EINTR" : "?",
           (int)alarms);

    alarm(10);
    unsigned left = alarm(0);
    printf("alarm(10) then alarm(0) answers %u\n", left);

    alarms = 0;
    struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 200000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    struct itimerval now;
    CHECK(getitimer(ITIMER_REAL, &now) == 0);
    int running = (now.it_value.tv_sec || now.it_value.tv_usec) && now.it_value.tv_sec == 0 &&
                  now.it_value.tv_usec <= 200000;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (alarms < 3)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK(getitimer(ITIMER_REAL, &now) == 0);
    /* (more than 3 when a tick comes while a handler runs: sigsuspend's mask lets it in;
     * it_value may read 0 between an expiry and the rearm, so only the interval is shown) */
    printf("interval timer: running after setitimer %s, at least 3 alarms %s, interval read "
           "back %ld us\n", running ? "yes" : "no", alarms >= 3 ? "yes" : "no",
           (long)now.it_interval.tv_usec);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, &now) == 0);
    CHECK(getitimer(ITIMER_REAL, &now) == 0);
    printf("disarmed: %s\n", !now.it_value.tv_sec && !now.it_value.tv_usec &&
                                     !now.it_interval.tv_sec && !now.it_interval.tv_usec
                                 ? "zero"
                                 : "still set");

    alarms = 0;
    alarm(1);
    unsigned slept_left = sleep(5);
    /* about 4 seconds left: 3 or 4 as the clocks fall */
    printf("sleep(5) with alarm(1): handler ran %d, sleep answered 3 or 4: %s\n", (int)alarms,
           slept_left == 3 || slept_left == 4 ? "yes" : "no");

    alarms = 0;
    sigprocmask(SIG_BLOCK, &block, &old);
    struct itimerval once = {{0, 0}, {0, 10000}};
    setitimer(ITIMER_REAL, &once, NULL);
    sigset_t pending;
    do {
        for (int i = 0; i < 1000; i++)
            sink++;
        sigpending(&pending);
    } while (!sigismember(&pending, SIGALRM));
    printf("blocked SIGALRM: pending yes, handler ran %d", (int)alarms);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf(", after unblock %d\n", (int)alarms);

    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        setitimer(ITIMER_REAL, &once, NULL);
        for (;;)
            sink++;
    }
    int status;
    waitpid(pid, &status, 0);
    printf("default action: %s\n",
           WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "killed by SIGALRM" : "?");

    errno = 0;
    rc = getitimer(7, &now);
    printf("getitimer(7): %d %s\n", rc, errno == EINVAL ? "EINVAL" : "?");
    errno = 0;
    rc = setitimer(7, &off, NULL);
    printf("setitimer(7): %d %s\n", rc, errno == EINVAL ? "EINVAL" : "?");
    return guest_exit_status("alarm_timer");
}
