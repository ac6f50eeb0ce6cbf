/* threads_bench.c: the debuggee of bench/threads_bench.py. Starts NTHREADS threads
   (argv[1], default 1000) that block at a barrier which never opens, then the main thread
   calls tick(i) in a loop, ITERATIONS times (argv[2], default 100000000), so a breakpoint
   on tick() stops a process of NTHREADS + 1 threads again and again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_barrier_t never;
volatile long ticks;

__attribute__((noinline)) void tick(long i)
{
    ticks = i;
}

static void *blocked(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&never);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 1000;
    long iterations = argc > 2 ? atol(argv[2]) : 100000000L;
    pthread_attr_t attr;
    pthread_t t;
    long i;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* One more party than will ever arrive: every thread stays blocked in the kernel. */
    pthread_barrier_init(&never, NULL, nthreads + 1);
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&t, &attr, blocked, NULL) != 0) {
            fprintf(stderr, "pthread_create failed at %ld\n", i);
            return 1;
        }
    for (i = 0; i < iterations; i++)
        tick(i);
    printf("ticks=%ld\n", ticks);
    return 0;
}
