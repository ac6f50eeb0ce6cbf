/* threads_many.c: NTHREADS threads (argv[1], default 200) meet at a barrier with the main
   thread, so all of them exist at once, then each calls work(id) ROUNDS times (argv[2],
   default 3) and returns. A SIGTRAP handler counts SIGTRAPs that reach the program (a
   debugger must keep its own traps to itself); at exit the program checks every thread's
   call count and prints a summary: 'threads=N rounds=K calls=C bad=B sigtraps=S'. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 2000

static pthread_barrier_t barrier;
static volatile sig_atomic_t sigtraps;
static int rounds = 3;
static int calls[MAX_THREADS];

static void on_sigtrap(int sig)
{
    (void)sig;
    sigtraps++;
}

/* The breakpoint site: one call per round per thread. */
__attribute__((noinline)) void work(int id)
{
    __atomic_add_fetch(&calls[id], 1, __ATOMIC_RELAXED); /* LINE:work-body */
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    int i;

    pthread_barrier_wait(&barrier);
    for (i = 0; i < rounds; i++)
        work(id);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t *threads;
    pthread_attr_t attr;
    struct sigaction sa;
    long total = 0;
    int i, bad = 0;

    if (argc > 2)
        rounds = atoi(argv[2]);
    if (nthreads < 1 || nthreads > MAX_THREADS)
        return 2;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigtrap;
    sigaction(SIGTRAP, &sa, NULL);

    threads = calloc(nthreads, sizeof *threads);
    pthread_attr_init(&attr);
    /* Small stacks: hundreds of threads in a test must not cost gigabytes of address space. */
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_barrier_init(&barrier, NULL, nthreads + 1);
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&threads[i], &attr, worker, (void *)(long)i) != 0)
            return 3;
    pthread_barrier_wait(&barrier); /* LINE:all-started */
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    for (i = 0; i < nthreads; i++) {
        total += calls[i];
        if (calls[i] != rounds)
            bad++;
    }
    printf("threads=%d rounds=%d calls=%ld bad=%d sigtraps=%d\n",
           nthreads, rounds, total, bad, (int)sigtraps);
    return bad != 0 || sigtraps != 0;
}
