/* simple.c: globals, two small functions called in a loop, an exit code from argv.

   Usage: simple [EXIT_CODE [MARKER_FILE]]
   With MARKER_FILE, the final state is written there just before exit, so a test
   can check that a detached run went on to completion on its own.
   Tests find source lines by the "LINE:" tags in comments, never by number. */
#include <stdio.h>
#include <stdlib.h>

int counter;
char buf[32] = "hello";

struct point {
    int x;
    int y;
};
struct point origin = { 3, 4 };

int add(int a, int b)
{
    int sum = a + b; /* LINE:add-body */
    return sum;      /* LINE:add-return */
}

void bump(int n)
{
    counter = add(counter, n); /* LINE:bump-body */
} /* LINE:bump-end */

static void write_marker(const char *path)
{
    char tmp[4096];
    FILE *f;

    /* Write then rename, so a reader never sees half a marker. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "counter=%d buf=%s\n", counter, buf);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 0; /* LINE:main-first */
    int i;

    for (i = 1; i <= 5; i++) /* LINE:loop-head */
        bump(i);             /* LINE:loop-call */
    buf[0] = 'H';            /* LINE:after-loop */
    origin.x += counter;     /* LINE:move-origin */
    printf("counter=%d buf=%s origin=%d,%d\n", counter, buf, origin.x, origin.y); /* LINE:report */
    if (argc > 2)
        write_marker(argv[2]);
    return code; /* LINE:return */
}
