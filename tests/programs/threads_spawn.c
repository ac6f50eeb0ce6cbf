/* threads_spawn.c: ROUNDS times (argv[1], default 20) main starts BATCH threads (argv[2],
   default 10) and at once calls spawned(i); a breakpoint on spawned() therefore stops the
   process while the newest threads may not have made their first stop yet. The threads
   stay blocked until the last round, so each later stop has to stop all of them again.
   Prints 'rounds=R threads=T'. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_THREADS 2000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static int go;
volatile int sink;

__attribute__((noinline)) void spawned(int i)
{
    sink = i; /* LINE:spawned */
}

static void *child(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!go)
        pthread_cond_wait(&released, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    int batch = argc > 2 ? atoi(argv[2]) : 10;
    static pthread_t threads[MAX_THREADS];
    pthread_attr_t attr;
    int i, j, n = 0;

    if (rounds < 1 || batch < 1 || rounds * batch > MAX_THREADS)
        return 2;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (i = 0; i < rounds; i++) {
        for (j = 0; j < batch; j++)
            if (pthread_create(&threads[n++], &attr, child, NULL) != 0)
                return 1;
        spawned(i);
    }
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&released);
    pthread_mutex_unlock(&lock);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    printf("rounds=%d threads=%d\n", rounds, n);
    return 0;
}
