/* threads_life.c: thread lifetimes and thread-directed signals. argv[1] picks a scenario:

     leader-exit  main starts a worker and leaves with pthread_exit; the worker waits (up
                  to 10 s) until the leader is a zombie, calls after_leader(i) for
                  i = 0, 1, 2, prints 'worker done calls=3' and exits with code 7
     joined       main starts a short-lived thread that waits until main blocks in
                  pthread_join, runs short_task() and returns; main joins it, then calls after_join(); prints 'joined'
     tgkill       main starts NWORKERS workers that record their tids, picks worker 2,
                  waits until it blocks in pause(), prints 'target tid=T', sends it SIGUSR1 with tgkill; the handler records
                  the tid it ran on; main prints 'handled by tid=H' after joining */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NWORKERS 4
#define TARGET 2

static volatile pid_t tids[NWORKERS];
static volatile pid_t handled_tid;
static volatile int done;
static pthread_barrier_t barrier;
volatile int sink;

static pid_t my_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

__attribute__((noinline)) void after_leader(int i)
{
    sink = i; /* LINE:after-leader */
}

__attribute__((noinline)) void short_task(void)
{
    sink = 1; /* LINE:short-task */
}

__attribute__((noinline)) void after_join(void)
{
    sink = 2; /* LINE:after-join */
}

static int leader_is_zombie(void)
{
    char path[64], buf[512];
    FILE *f;
    char *close_paren;
    int zombie = 0;

    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
    f = fopen(path, "r");
    if (f == NULL)
        return 1; /* gone altogether */
    if (fgets(buf, sizeof buf, f) != NULL) {
        close_paren = strrchr(buf, ')');
        zombie = close_paren != NULL && (close_paren[2] == 'Z' || close_paren[2] == 'X');
    }
    fclose(f);
    return zombie;
}

/* True once thread `tid` of this process is blocked in system call `nr`. */
static int in_syscall(pid_t tid, long nr)
{
    char path[64];
    long current = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &current) != 1)
        current = -1;
    fclose(f);
    return current == nr;
}

static void *survivor(void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < 1000 && !leader_is_zombie(); i++)
        usleep(10000);
    printf("leader gone=%d\n", leader_is_zombie());
    fflush(stdout);
    for (i = 0; i < 3; i++)
        after_leader(i);
    printf("worker done calls=%d\n", i);
    fflush(stdout);
    exit(7);
}

static void *short_lived(void *arg)
{
    int i;

    (void)arg;
    /* Main is inside pthread_join when short_task() runs, in every run alike. */
    for (i = 0; i < 10000 && !in_syscall(getpid(), SYS_futex); i++)
        usleep(1000);
    short_task();
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
    handled_tid = my_tid();
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    int i;

    tids[id] = my_tid();
    pthread_barrier_wait(&barrier);
    if (id == TARGET) {
        /* Blocked in pause() when the signal comes (main makes sure of it), so the stop
           is reported at the same place in every run. */
        while (handled_tid == 0)
            pause();
        return NULL;
    }
    /* Bounded, so that a lost signal ends the run instead of hanging it. */
    for (i = 0; i < 1000 && !done; i++)
        usleep(10000);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "joined";
    pthread_t t, workers[NWORKERS];
    struct sigaction sa;
    long i;

    if (strcmp(mode, "leader-exit") == 0) {
        pthread_create(&t, NULL, survivor, NULL);
        pthread_exit(NULL);
    } else if (strcmp(mode, "joined") == 0) {
        pthread_create(&t, NULL, short_lived, NULL);
        pthread_join(t, NULL);
        after_join();
        printf("joined\n");
    } else if (strcmp(mode, "tgkill") == 0) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        pthread_barrier_init(&barrier, NULL, NWORKERS + 1);
        for (i = 0; i < NWORKERS; i++)
            pthread_create(&workers[i], NULL, worker, (void *)i);
        pthread_barrier_wait(&barrier);
        for (i = 0; i < 10000 && !in_syscall(tids[TARGET], SYS_pause); i++)
            usleep(1000);
        printf("target tid=%d\n", (int)tids[TARGET]);
        fflush(stdout);
        syscall(SYS_tgkill, getpid(), tids[TARGET], SIGUSR1); /* LINE:tgkill */
        for (i = 0; i < 10000 && handled_tid == 0; i++)
            usleep(1000);
        done = 1;
        for (i = 0; i < NWORKERS; i++)
            pthread_join(workers[i], NULL);
        printf("handled by tid=%d\n", (int)handled_tid);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
