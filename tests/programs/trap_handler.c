/* Handles SIGTRAP, which a debugger passes to it at ready() (gdb's `signal SIGTRAP`); exits 0
 * when the handler ran exactly once, 1 otherwise. */
#include <signal.h>

volatile sig_atomic_t trapped;

static void on_trap(int sig)
{
    (void)sig;
    trapped++;
}

__attribute__((noinline)) void ready(void)
{
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    signal(SIGTRAP, on_trap);
    ready();
    return trapped == 1 ? 0 : 1;
}
