/* Every thread, the main one included, ends with the exit system call (not exit_group) at
 * about the same time, after a barrier (as gdb.threads/process-exit-status-is-leader-exit-
 * status.c does): the main thread's end leaves the others running for a moment, and the
 * process ends when the last one does. */
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 32

static pthread_barrier_t barrier;

static void leave(int code)
{
    pthread_barrier_wait(&barrier);
    syscall(SYS_exit, code);
}

static void *start(void *arg)
{
    leave(*(int *)arg);
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    int codes[THREADS];

    pthread_barrier_init(&barrier, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        codes[i] = i + 2;
        pthread_create(&threads[i], NULL, start, &codes[i]);
    }
    leave(1);
    return 0;
}
