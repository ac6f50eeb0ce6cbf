/* target_calls.c: calls hit() N times (N from argv[1], default 3) and prints how many calls
   it made, so a test can compare breakpoint hit counts with the program's own count. */
#include <stdio.h>
#include <stdlib.h>

int calls;

void hit(int i)
{
    calls += 1; /* LINE:hit-body */
    (void)i;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    int i;

    for (i = 0; i < n; i++)
        hit(i);
    printf("calls=%d\n", calls);
    return 0;
}
