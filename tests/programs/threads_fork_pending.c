/* The main thread spins (a client steps it) while a second thread waits for `release` and
 * then forks (as gdb.threads/pending-fork-event-detach.c does). The child exits at once with
 * status 7; the parent waits for it and writes "child exited 7" to the file argv[1] names,
 * so no such line appears while the child is kept stopped. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

volatile int release;
volatile unsigned long spins;
static const char *report;

static void *forker(void *arg)
{
    int status;
    pid_t child;
    FILE *out;

    (void)arg;
    while (!release)
        ;
    child = fork();
    if (child == 0)
        _exit(7);
    waitpid(child, &status, 0);
    out = fopen(report, "w");
    if (out != NULL) {
        fprintf(out, "child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        fclose(out);
    }
    exit(0);
}

int main(int argc, char **argv)
{
    pthread_t thread;

    report = argc > 1 ? argv[1] : "/dev/null";
    pthread_create(&thread, NULL, forker, NULL);
    for (;;)
        spins++;
}
