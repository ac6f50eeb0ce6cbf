/* counter.c: a small program to try gdbstub on.

   It counts up in steps, keeps a running tally in a global struct, and prints its
   progress. Good places to stop: `break step_once`, `break counter.c:NN`,
   `watch tally.total`, `print tally`, `finish`.

   Usage: counter [STEPS [INCREMENT]]      (defaults: 5 steps of 1) */
#include <stdio.h>
#include <stdlib.h>

struct tally {
    int steps;   /* how many times step_once ran */
    long total;  /* the running sum */
    char last_note[48];
};

struct tally tally;
int increment = 1;
const char *greeting = "hello from counter";

/* One step: add to the total and remember what happened. */
static long step_once(int step)
{
    long added = (long)step * increment;

    tally.steps++;
    tally.total += added;
    snprintf(tally.last_note, sizeof tally.last_note, "step %d added %ld", step, added);
    return tally.total;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    int i;

    if (argc > 2)
        increment = atoi(argv[2]);
    printf("%s: %d steps of %d\n", greeting, steps, increment);
    for (i = 1; i <= steps; i++) {
        long total = step_once(i);
        printf("  step %d: total = %ld\n", i, total);
    }
    printf("done: %d steps, total %ld (%s)\n", tally.steps, tally.total, tally.last_note);
    return 0;
}
