/* threads_tls.c: thread-local variables, for `print` of a __thread variable through the stub
   (qGetTLSAddr). Each of two workers sets its own copy of `counter` and `name` and stops at
   report(); main's copy keeps its initial value. */
#include <pthread.h>
#include <stdio.h>

__thread int counter = 5;
__thread char name[16] = "main";

__attribute__((noinline)) void report(int id)
{
    printf("thread %d counter=%d name=%s\n", id, counter, name); /* LINE:report */
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    counter = 100 + id;
    snprintf(name, sizeof name, "worker%d", id);
    report(id);
    return NULL;
}

int main(void)
{
    pthread_t threads[2];
    for (long i = 0; i < 2; i++) {
        pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
        pthread_join(threads[i], NULL);
    }
    report(0);
    return 0;
}
