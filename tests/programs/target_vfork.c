/* target_vfork.c: vforks a child that sleeps without exec. Until the child exits, the parent
   waits in vfork in uninterruptible sleep (state D), where no stop request reaches it. */
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    if (vfork() == 0) {
        sleep(20);
        _exit(0);
    }
    return 0;
}
