/* A thread other than the main one execs the program again (as gdb.threads/thread-execl.c
 * does); run again with an argument, the program exits at once with status 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *image;

void *execler(void *arg)
{
    (void)arg;
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
    pthread_create(&thread, NULL, execler, NULL);
    pthread_join(thread, NULL);
    return 1;
}
