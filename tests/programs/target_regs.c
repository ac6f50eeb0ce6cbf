/* target_regs.c: prints values that travel through registers, so a test that writes a register
   at the right instruction sees the new value in the program's output.
     answer()       returns its value in rax; main prints it as "answer=..."
     show_double()  receives its argument in xmm0 and prints it as "double=..." */
#include <stdio.h>

long answer(void)
{
    return 7;
}

void show_double(double d)
{
    printf("double=%.4f\n", d);
}

int main(void)
{
    long a = answer();

    printf("answer=%ld\n", a);
    show_double(1.5);
    return 0;
}
