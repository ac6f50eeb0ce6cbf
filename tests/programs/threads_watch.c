/* threads_watch.c: globals of several sizes written and read in a known order, for the
   hardware watchpoint tests. argv[1] picks one scenario; each starts by calling ready(),
   where the debugger sets its watchpoints, and runs its accesses one after the other
   (a thread is joined before the next access), so every run makes the same accesses in the
   same order. A SIGTRAP handler counts SIGTRAPs that reach the program; the program prints
   'sigtraps=N' at its end.

   Scenarios:
     newthread  a thread created after ready() writes wglobal: 0 -> 42 -> 43
     read       a thread writes and reads rglobal: write 5, read, write 9, read
     five       main writes w1..w5 in order (1..5), then w1..w4 again (11..14)
     hbreak     main calls twice(x) for x = 0, 1, 2
     sizes      main writes s16 (2 bytes), l64 (8 bytes), then pk.c, pk.v, then the last
                byte of pk.v alone; pk.v is an 8-byte member at an odd address
     detach     a worker blocks at a barrier, then main calls ready(); after it, main and
                the worker write wglobal, a new thread writes it too, and the program
                reports its SIGTRAP count, then waits (up to 30 s) for the file argv[2]
                to exist before it exits, so the test can inspect its threads */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct __attribute__((packed)) packed {
    char c;
    long v; /* at offset 1: unaligned */
};

volatile int wglobal;
volatile int rglobal = 7;
volatile int w1, w2, w3, w4, w5;
volatile short s16;
volatile long l64;
volatile struct packed pk __attribute__((aligned(8)));
volatile int sink;

static volatile sig_atomic_t sigtraps;
static pthread_barrier_t barrier;
static volatile pid_t waiter_tid;

static void on_sigtrap(int sig)
{
    (void)sig;
    sigtraps++;
}

/* Where the debugger sets its watchpoints. */
__attribute__((noinline)) void ready(void)
{
    sink = 0; /* LINE:ready */
}

__attribute__((noinline)) int twice(int x)
{
    return x * 2; /* LINE:twice-body */
}

static void *writer(void *arg)
{
    (void)arg;
    wglobal = 42; /* LINE:writer-42 */
    wglobal = 43; /* LINE:writer-43 */
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    rglobal = 5; /* LINE:reader-write-5 */
    sink = rglobal; /* LINE:reader-read-5 */
    rglobal = 9; /* LINE:reader-write-9 */
    sink = rglobal + 1; /* LINE:reader-read-9 */
    return NULL;
}

static void *waiter(void *arg)
{
    (void)arg;
    waiter_tid = (pid_t)syscall(SYS_gettid);
    pthread_barrier_wait(&barrier);
    wglobal = 100; /* LINE:waiter-write */
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier); /* stays alive until main has been inspected */
    return NULL;
}

static void run_thread(void *(*fn)(void *))
{
    pthread_t t;

    pthread_create(&t, NULL, fn, NULL);
    pthread_join(t, NULL);
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

static int wait_for_file(const char *path, int seconds)
{
    int i;

    for (i = 0; i < seconds * 100; i++) {
        if (access(path, F_OK) == 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "newthread";
    struct sigaction sa;
    pthread_t t;
    int i;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigtrap;
    sigaction(SIGTRAP, &sa, NULL);

    if (strcmp(mode, "newthread") == 0) {
        ready();
        run_thread(writer);
        printf("wglobal=%d\n", wglobal);
    } else if (strcmp(mode, "read") == 0) {
        ready();
        run_thread(reader);
        printf("rglobal=%d sink=%d\n", rglobal, sink); /* LINE:read-report */
    } else if (strcmp(mode, "five") == 0) {
        ready();
        w1 = 1; /* LINE:five-w1 */
        w2 = 2;
        w3 = 3;
        w4 = 4;
        w5 = 5;
        w1 = 11;
        w2 = 12;
        w3 = 13;
        w4 = 14;
        printf("w=%d,%d,%d,%d,%d\n", w1, w2, w3, w4, w5);
    } else if (strcmp(mode, "hbreak") == 0) {
        int x, sum = 0;

        ready();
        for (x = 0; x < 3; x++)
            sum += twice(x); /* LINE:hbreak-call */
        printf("sum=%d\n", sum);
    } else if (strcmp(mode, "sizes") == 0) {
        ready();
        s16 = 0x1234; /* LINE:sizes-s16 */
        l64 = 0x1122334455667788L; /* LINE:sizes-l64 */
        pk.c = 'x'; /* LINE:sizes-pk-c */
        pk.v = 0x0102030405060708L; /* LINE:sizes-pk-v */
        ((volatile char *)&pk)[8] = 0x7f; /* LINE:sizes-pk-last */
        printf("s16=%#x l64=%#lx pk.v=%#lx\n", s16, l64, pk.v);
    } else if (strcmp(mode, "detach") == 0) {
        pthread_barrier_init(&barrier, NULL, 2);
        pthread_create(&t, NULL, waiter, NULL);
        /* The worker is blocked at the barrier before ready(): same state in every run. */
        for (i = 0; i < 10000 && (waiter_tid == 0 || !in_syscall(waiter_tid, SYS_futex)); i++)
            usleep(1000);
        ready();
        wglobal = 1; /* LINE:detach-main-write */
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier);
        run_thread(writer);
        printf("wglobal=%d sigtraps=%d\n", wglobal, (int)sigtraps);
        printf("pid=%d waiting\n", (int)getpid());
        fflush(stdout);
        /* The worker is still alive here: the test inspects both threads. */
        if (argc > 2 && !wait_for_file(argv[2], 30))
            printf("gave up waiting for %s\n", argv[2]);
        pthread_barrier_wait(&barrier);
        pthread_join(t, NULL);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("sigtraps=%d\n", (int)sigtraps);
    return sigtraps != 0;
}
