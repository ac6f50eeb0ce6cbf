/* A page is mapped, unmapped and mapped again at the same address with new contents (as a
 * library unloaded and another loaded in its place): a breakpoint the debugger set in the old
 * page is gone from the new one. mapped() marks each stage. The exit status is 0 when the
 * new page's byte at offset 16 is still the program's own (0x91) at the end. gone() is
 * called while the page is unmapped. */
#include <string.h>
#include <sys/mman.h>

unsigned char *page;

__attribute__((noinline)) void mapped(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void gone(void)
{
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 2;
    memset(page, 0x90, 4096);
    mapped();
    munmap(page, 4096);
    gone();
    if (mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != page)
        return 2;
    memset(page, 0x91, 4096);
    mapped();
    return page[16] == 0x91 ? 0 : 1;
}
