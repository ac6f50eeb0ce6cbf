/* target_exit_while_cloning.c: SPAWNERS threads (argv[2], default 2) start short-lived
   threads without a pause while main sleeps MS milliseconds (argv[1], default 30), prints
   'exiting' and calls exit(0). The exit kills every thread, the ones being created too: a
   thread whose parent dies before the parent's clone event stops at its exit with no event
   ever saying whose it is. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *leaf(void *arg)
{
    return arg;
}

static void *spawner(void *arg)
{
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, leaf, NULL) != 0)
            usleep(100); /* too many at once: let some end */
    }
    return arg;
}

int main(int argc, char **argv)
{
    int ms = argc > 1 ? atoi(argv[1]) : 30;
    int spawners = argc > 2 ? atoi(argv[2]) : 2;

    for (int i = 0; i < spawners; i++) {
        pthread_t thread;
        pthread_create(&thread, NULL, spawner, NULL);
    }
    usleep(ms * 1000);
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}
