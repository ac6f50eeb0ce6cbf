/* threads_pause.c: sixteen threads doing what makes a pause hard to get right, until killed:
   BUSY threads spin in a tight loop, BLOCKED threads sit in blocking system calls (nanosleep
   and a read from a pipe nobody writes), and CHURN threads each create and join a short-lived
   thread again and again, so threads are always being born and dying. Prints 'ready' once
   every thread has started. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define BUSY 6
#define BLOCKED 5
#define CHURN 5

static volatile unsigned long spins[BUSY];
static volatile unsigned long churned;
static int pipe_fds[2];
static pthread_barrier_t started;

static void *busy(void *arg)
{
    long id = (long)arg;

    pthread_barrier_wait(&started);
    for (;;)
        spins[id]++;
    return NULL;
}

static void *blocked(void *arg)
{
    char byte;
    struct timespec pause = {1, 0};

    pthread_barrier_wait(&started);
    for (;;) {
        if ((long)arg % 2)
            nanosleep(&pause, NULL);
        else if (read(pipe_fds[0], &byte, 1) <= 0)
            nanosleep(&pause, NULL);
    }
    return NULL;
}

static void *short_lived(void *arg)
{
    __atomic_add_fetch(&churned, 1, __ATOMIC_RELAXED);
    return arg;
}

static void *churn(void *arg)
{
    pthread_t child;

    pthread_barrier_wait(&started);
    for (;;) {
        if (pthread_create(&child, NULL, short_lived, arg) == 0)
            pthread_join(child, NULL);
    }
    return NULL;
}

int main(void)
{
    pthread_t threads[BUSY + BLOCKED + CHURN];
    long i, n = 0;

    if (pipe(pipe_fds) != 0)
        return 1;
    pthread_barrier_init(&started, NULL, BUSY + BLOCKED + CHURN + 1);
    for (i = 0; i < BUSY; i++)
        pthread_create(&threads[n++], NULL, busy, (void *)i);
    for (i = 0; i < BLOCKED; i++)
        pthread_create(&threads[n++], NULL, blocked, (void *)i);
    for (i = 0; i < CHURN; i++)
        pthread_create(&threads[n++], NULL, churn, (void *)i);
    pthread_barrier_wait(&started);
    printf("ready\n");
    fflush(stdout);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
