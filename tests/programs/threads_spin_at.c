/* Two threads spin on one instruction, spin_here (a jump to itself), for ever, while the main
 * thread waits for them: with a breakpoint there, both hit it at every resume. */
#include <pthread.h>

static void *worker(void *arg)
{
    (void)arg;
    __asm__ volatile(".globl spin_here\nspin_here: jmp spin_here");
    return NULL;
}

int main(void)
{
    pthread_t threads[2];

    pthread_create(&threads[0], NULL, worker, NULL);
    pthread_create(&threads[1], NULL, worker, NULL);
    pthread_join(threads[0], NULL);
    return 0;
}
