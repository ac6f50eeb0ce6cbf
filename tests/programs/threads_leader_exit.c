/* threads_leader_exit.c: the main thread starts a worker, then ends itself alone with
   pthread_exit (in main_leaves); the worker, which waits for the main thread to end,
   then ends the process with exit code 3. */
#include <pthread.h>
#include <stdlib.h>

static pthread_t main_thread;
static pthread_barrier_t barrier;

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&barrier);
    pthread_join(main_thread, NULL);
    exit(3);
}

__attribute__((noinline)) void main_leaves(void)
{
    pthread_exit(NULL);
}

int main(void)
{
    pthread_t t;

    main_thread = pthread_self();
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&t, NULL, worker, NULL);
    pthread_barrier_wait(&barrier);
    main_leaves();
    return 0;
}
