/* Conditional breakpoints and dprintf: probe() is called once per iteration with values of
 * the C integer types a condition reads (signed and unsigned, narrow and wide, through a
 * pointer, in an array, in globals).
 *
 * usage: conditions [ITERATIONS [threads]]   (64 if not given)
 * With "threads", THREADS threads each make ITERATIONS calls at once (w is the thread's number).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4

struct record {
    int x;
    short y;
    unsigned char flags;
    char name[8];
    long long big;
    struct record *next;
};

struct record records[4] = {
    {1, 2, 0x01, "a", 5, &records[1]},
    {3, -4, 0x80, "bb", 0x123456789LL, &records[2]},
    {5, 6, 0x81, "ccc", -1, &records[3]},
    {-7, 8, 0x00, "dddd", 0x7fffffffffffffffLL, NULL},
};
long counter_global;
signed char small_global = -3;

__attribute__((noinline)) void probe(int i, long w, unsigned u, short s, char c, struct record *r)
{
    counter_global += i + (r->x > 0); /* LINE:probe */
}

static int iterations = 64;
static long tallies;

__attribute__((noinline)) void tally(long t, int i)
{
    tallies += t * i; /* LINE:tally */
}

static void *worker(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < iterations; i++)
    {
        probe(i, t, (unsigned)i, (short)t, (char)('a' + t), &records[t % 4]);
        tally(t, i);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 64;
    if (argc > 2 && strcmp(argv[2], "threads") == 0) {
        pthread_t threads[THREADS];
        iterations = n;
        for (long t = 0; t < THREADS; t++)
            pthread_create(&threads[t], NULL, worker, (void *)t);
        for (int t = 0; t < THREADS; t++)
            pthread_join(threads[t], NULL);
        printf("done %ld\n", counter_global);
        return 0;
    }
    for (int i = 0; i < n; i++)
        probe(i, (long)i * -7 + 100, (unsigned)i * 0x10000001u, (short)(i * 1000),
              (char)('a' + i % 26), &records[i % 4]);
    printf("done %ld\n", counter_global);
    return 0;
}
