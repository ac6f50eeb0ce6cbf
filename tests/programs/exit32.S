/* exit32.S: a 32-bit (i386) static program that exits with status 7 at once, for the tests
   of a process that execs into, or is started as, a program gdbstub does not debug. */
        .globl _start
_start:
        movl $1, %eax           /* SYS_exit (i386) */
        movl $7, %ebx
        int $0x80
