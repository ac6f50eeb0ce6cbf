/* crash.c: ends badly in a way chosen by argv[1].

   Usage: crash [segv|abort|term]   (default segv)
     segv   write through a null pointer (SIGSEGV stop, then death by the signal)
     abort  call abort() (SIGABRT)
     term   kill(getpid(), SIGTERM): killed by a signal it does not handle */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int crash_count;

static void write_null(int *p)
{
    crash_count++;
    *p = 42; /* LINE:null-write */
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "segv";

    if (strcmp(how, "segv") == 0)
        write_null(NULL); /* LINE:call-null */
    else if (strcmp(how, "abort") == 0)
        abort(); /* LINE:abort */
    else if (strcmp(how, "term") == 0)
        kill(getpid(), SIGTERM); /* LINE:term */
    return 3;
}
