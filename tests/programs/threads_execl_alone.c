/* The main thread leaves (pthread_exit) and the other thread, once it has joined it, execs
 * the program again (as gdb.threads/non-ldr-exc-2.c does): the exec makes it the leader of
 * a process whose leader had gone. Run again with an argument, the program exits at once
 * with status 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *image;
static pthread_t main_thread;

static void *execler(void *arg)
{
    (void)arg;
    pthread_join(main_thread, NULL);
    execl(image, image, "again", (char *)NULL);
    perror("execl");
    abort();
}

int main(int argc, char **argv)
{
    pthread_t thread;

    if (argc > 1)
        return 0;
    image = argv[0];
    main_thread = pthread_self();
    pthread_create(&thread, NULL, execler, NULL);
    pthread_exit(NULL);
}
