/* signals.c: installs a SIGUSR1 handler, sends itself SIGUSR1 three times, prints
   how many it handled, and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled++; /* LINE:handler */
}

int main(void)
{
    struct sigaction sa;
    int i;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    for (i = 0; i < 3; i++)
        kill(getpid(), SIGUSR1); /* LINE:raise */
    printf("handled=%d\n", (int)handled); /* LINE:report */
    return 0;
}
