/* target_blocking.c: blocks in pause(), made by its own `syscall` instruction (labelled
   blocking_syscall), for tests of a step over a breakpoint on a call that blocks. */
#include <sys/syscall.h>

int main(void)
{
    long ret;

    asm volatile(".globl blocking_syscall\nblocking_syscall:\n\tsyscall"
                 : "=a"(ret) : "a"((long)SYS_pause) : "rcx", "r11", "memory");
    return (int)ret;
}
