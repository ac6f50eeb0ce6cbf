/* timer_signals.c: a timer sends SIGALRM every millisecond while main spins in one line
   waiting for the handler to have run 20 times, so a `next` over that line is hit by signals
   again and again; prints how many it handled, and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    handled++; /* LINE:handler */
}

int main(void)
{
    struct sigaction sa;
    struct itimerval every_ms;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    memset(&every_ms, 0, sizeof every_ms);
    every_ms.it_interval.tv_usec = 1000;
    every_ms.it_value.tv_usec = 1000;
    setitimer(ITIMER_REAL, &every_ms, NULL); /* LINE:start */
    while (handled < 20); /* LINE:spin */
    memset(&every_ms, 0, sizeof every_ms); /* LINE:after */
    setitimer(ITIMER_REAL, &every_ms, NULL);
    printf("handled=%d\n", handled >= 20); /* LINE:report */
    return 0;
}
