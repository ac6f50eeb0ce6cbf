/* target_handler.c: spins, counting SIGUSR2 in a handler, until a debugger sets `stop`;
   exits with the count. */
#include <signal.h>

volatile sig_atomic_t got;
volatile int stop;

static void on_usr2(int sig)
{
    (void)sig;
    got++;
}

int main(void)
{
    signal(SIGUSR2, on_usr2);
    while (!stop)
        ;
    return got;
}
