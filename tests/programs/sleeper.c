/* sleeper.c: prints "ready", then sleeps inside two calls of its own (outer -> inner ->
   sleep), for tests of the C frame unwinder (gdbstub/symbols/cframes.py). */
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) static void inner(void)
{
    for (;;)
        sleep(1000);
}

__attribute__((noinline)) static void outer(void)
{
    inner();
}

int main(void)
{
    puts("ready");
    fflush(stdout);
    outer();
    return 0;
}
