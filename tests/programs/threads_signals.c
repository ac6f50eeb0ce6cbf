/* Two worker threads send themselves a signal at the same moment, ROUNDS times (argv[1]):
 * the first SIGUSR1, the second SIGUSR2. Under a debugger that stops on both and passes them,
 * one thread's stop is reported while the other's waits; both signals must still reach their
 * handlers exactly once a round, with the siginfo tgkill gave them.
 *
 * Exit status: 0 when every handler ran once a round with the right siginfo; 1 when a signal
 * was lost or delivered twice; 2 when a siginfo was wrong.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t start, done;
static volatile int hits[2];
static volatile int bad_siginfo;
static int rounds;

static void handler(int sig, siginfo_t *info, void *context)
{
    (void)context;
    if (info->si_signo != sig || info->si_code != SI_TKILL || info->si_pid != getpid())
        bad_siginfo = 1;
    hits[sig == SIGUSR1 ? 0 : 1]++;
}

static void *worker(void *arg)
{
    int sig = arg ? SIGUSR2 : SIGUSR1;
    for (int i = 0; i < rounds; i++) {
        pthread_barrier_wait(&start);
        syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
        pthread_barrier_wait(&done);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct sigaction act = {0};
    pthread_t threads[2];

    rounds = argc > 1 ? atoi(argv[1]) : 20;
    act.sa_sigaction = handler;
    act.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&act.sa_mask);
    sigaction(SIGUSR1, &act, NULL);
    sigaction(SIGUSR2, &act, NULL);
    pthread_barrier_init(&start, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_create(&threads[0], NULL, worker, NULL);
    pthread_create(&threads[1], NULL, worker, (void *)1);
    pthread_join(threads[0], NULL);
    pthread_join(threads[1], NULL);
    printf("SIGUSR1 %d SIGUSR2 %d of %d\n", hits[0], hits[1], rounds);
    if (hits[0] != rounds || hits[1] != rounds)
        return 1;
    return bad_siginfo ? 2 : 0;
}
