/* A thread other than the main one execs the program again (as gdb.threads/thread-execl.c
 * does). With the argument "alone", the main thread leaves first (pthread_exit) and the other
 * thread joins it before the exec (as gdb.threads/non-ldr-exc-2.c does): the exec makes it
 * the leader of a process whose leader had gone. Run again by the exec, the program exits
 * at once with status 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *image;
static pthread_t main_thread;
static int alone;

void *execler(void *arg)
{
    (void)arg;
    if (alone)
        pthread_join(main_thread, NULL);
    execl(image, image, "again", (char *)NULL);
    perror("execl");
    abort();
}

int main(int argc, char **argv)
{
    pthread_t thread;

    if (argc > 1 && strcmp(argv[1], "again") == 0)
        return 0;
    image = argv[0];
    alone = argc > 1 && strcmp(argv[1], "alone") == 0;
    main_thread = pthread_self();
    pthread_create(&thread, NULL, execler, NULL);
    if (alone)
        pthread_exit(NULL);
    pthread_join(thread, NULL);
    return 1;
}
