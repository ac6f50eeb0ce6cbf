/* Two threads reach breakpoints at different paces. `quick` spins on one instruction,
 * quick_here (a jump to itself): with a breakpoint there, it traps at once at every resume.
 * `late` runs a busy loop of varying length, from nothing to about a millisecond,
 * between passes over late_here: with a breakpoint there (a 4-byte instruction), it
 * often traps just as a server that has heard of the quick thread's trap interrupts it. */
#include <pthread.h>
#include <stdlib.h>

static unsigned longest = 320000; /* busy-loop turns at most, or argv[1] */

static void *quick(void *arg)
{
    (void)arg;
    __asm__ volatile(".globl quick_here\nquick_here: jmp quick_here");
    return NULL;
}

static void *late(void *arg)
{
    unsigned seed = 1;

    (void)arg;
    for (;;) {
        seed = seed * 1103515245u + 12345u;
        for (volatile unsigned spin = (seed >> 8) % longest; spin; spin--)
            ;
        __asm__ volatile(".globl late_here\nlate_here: nopl 0(%%rax,%%rax,1)" ::: "memory");
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[2];

    if (argc > 1)
        longest = (unsigned)strtoul(argv[1], NULL, 0);

    pthread_create(&threads[0], NULL, quick, NULL);
    pthread_create(&threads[1], NULL, late, NULL);
    pthread_join(threads[0], NULL);
    return 0;
}
