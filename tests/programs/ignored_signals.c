/* Exits with the number of signals (1 to 31) whose disposition it found set to "ignore":
 * 0 when started from a shell with the default dispositions. An ignored signal stays ignored
 * across exec, so a server that ignores some (CPython ignores SIGPIPE and SIGXFSZ) must not
 * hand that on to the programs it starts. */
#include <signal.h>
#include <stddef.h>

int main(void)
{
    struct sigaction action;
    int ignored = 0;

    for (int sig = 1; sig < 32; sig++)
        if (sigaction(sig, NULL, &action) == 0 && action.sa_handler == SIG_IGN)
            ignored++;
    return ignored;
}
