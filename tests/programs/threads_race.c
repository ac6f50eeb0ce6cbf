/* threads_race.c: NTHREADS threads (argv[1], default 4) call hit(id) in a tight loop
   ROUNDS times each (argv[2], default 100000), so that with a breakpoint on hit() several
   threads reach it at nearly the same moment, again and again. Prints
   'calls=C sigtraps=S' at exit; SIGTRAPs that reach the program are counted. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t sigtraps;
static long rounds = 100000;
static long calls;

static void on_sigtrap(int sig)
{
    (void)sig;
    sigtraps++;
}

__attribute__((noinline)) void hit(int id)
{
    (void)id;
    __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED); /* LINE:hit-body */
}

static void *worker(void *arg)
{
    long i;

    for (i = 0; i < rounds; i++)
        hit((int)(long)arg);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 4;
    pthread_t threads[64];
    struct sigaction sa;
    int i;

    if (argc > 2)
        rounds = atol(argv[2]);
    if (nthreads < 1 || nthreads > 64)
        return 2;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigtrap;
    sigaction(SIGTRAP, &sa, NULL);
    for (i = 0; i < nthreads; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(long)i);
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    printf("calls=%ld sigtraps=%d\n", calls, (int)sigtraps);
    return 0;
}
