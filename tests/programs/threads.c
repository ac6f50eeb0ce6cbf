/* threads.c: starts a few threads that each add to a shared total, joins them,
   prints the total and exits 0. */
#include <pthread.h>
#include <stdio.h>

#define NTHREADS 3
#define ROUNDS 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
long total;

static void add_share(long n)
{
    pthread_mutex_lock(&lock);
    total += n; /* LINE:add-share */
    pthread_mutex_unlock(&lock);
}

static void *worker(void *arg)
{
    long id = (long)arg;
    int i;

    for (i = 0; i < ROUNDS; i++)
        add_share(id); /* LINE:worker-call */
    return NULL;
}

int main(void)
{
    pthread_t threads[NTHREADS];
    long i;

    for (i = 0; i < NTHREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
    for (i = 0; i < NTHREADS; i++)
        pthread_join(threads[i], NULL);
    printf("total=%ld\n", total); /* LINE:report */
    return 0;
}
