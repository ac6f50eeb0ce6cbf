/* The benchmark's debuggee.
 *
 * usage: target MIB ITERATIONS
 *
 * Fills a MIB-mebibyte heap buffer with a repeating pseudo-random block (no byte runs, so a
 * server's run-length encoding cannot shrink memory replies), calls bench_ready() (where the
 * client puts its first breakpoint), then calls bench_tick() ITERATIONS times: the single-step
 * and breakpoint measurements run in that loop. A breakpoint rather than an int3 in the code:
 * gdbserver reports a program's own int3 as a swbreak stop at the int3, which steps can never leave.
 * The client finds the buffer through the globals below (the program is built -no-pie, so their
 * addresses come straight from the symbol table).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A prime length, so that block boundaries never line up with packet boundaries. The client
 * generates the same block (same xorshift32 seed) to check every byte it reads. */
#define BLOCK_SIZE 4093
#define SEED 0x2545f491u

unsigned char *bench_buffer;
unsigned long bench_size;
volatile unsigned long bench_ticks;

__attribute__((noinline)) void bench_ready(void)
{
    __asm__ volatile("" ::: "memory"); /* keep the call and the buffer writes before it */
}

__attribute__((noinline)) void bench_tick(void)
{
    bench_ticks++;
}

int main(int argc, char **argv)
{
    unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    unsigned long iterations = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000000ul;
    unsigned char block[BLOCK_SIZE];
    uint32_t x = SEED;

    for (int i = 0; i < BLOCK_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        block[i] = (unsigned char)(x >> 24);
    }
    bench_size = mib << 20;
    bench_buffer = malloc(bench_size);
    if (bench_buffer == NULL)
        return 1;
    /* Writing every byte also faults every page in: reads then measure the server, not the kernel. */
    for (unsigned long off = 0; off < bench_size; off += BLOCK_SIZE) {
        unsigned long n = bench_size - off < BLOCK_SIZE ? bench_size - off : BLOCK_SIZE;
        memcpy(bench_buffer + off, block, n);
    }
    bench_ready();
    for (unsigned long i = 0; i < iterations; i++)
        bench_tick();
    return 0;
}
