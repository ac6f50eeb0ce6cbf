/* forks.c: a program that starts another process, for the fork and vfork tests.

   forks.c [fork|vfork|system]: work(1), then fork (the child calls work(2) and exits 7),
   vfork and exec echo, or system("echo from-shell"); then work(4). Every process says what
   it did on stdout, and after a fork the parent exits with the child's exit status: a child
   that died (say, of an int3 left in its copy of the text) shows as a missing line and an
   exit status other than 7. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int counter;

__attribute__((noinline)) void work(int who)
{
    counter += who; /* LINE:work */
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "fork";
    int status, code = 0;

    work(1);
    if (strcmp(mode, "vfork") == 0) {
        pid_t child = vfork(); /* LINE:vfork */
        if (child == 0) {
            execl("/bin/echo", "echo", "exec'd", (char *)0);
            _exit(99);
        }
        waitpid(child, &status, 0);
        printf("vfork child exit %d\n", WEXITSTATUS(status));
    } else if (strcmp(mode, "system") == 0) {
        printf("system %d\n", system("echo from-shell"));
    } else {
        pid_t child = fork();
        if (child == 0) {
            work(2);
            printf("child counter=%d\n", counter);
            return 7;
        }
        waitpid(child, &status, 0);
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        printf("fork child exit %d\n", code);
    }
    fflush(stdout);
    work(4);
    printf("parent counter=%d\n", counter);
    return code;
}
