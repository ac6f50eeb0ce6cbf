/* pause32.S: a 32-bit (i386) static program that waits in pause() until killed, for the
   tests of attaching to a program gdbstub does not debug. */
        .globl _start
_start:
        movl $29, %eax          /* SYS_pause (i386) */
        int $0x80
        jmp _start
