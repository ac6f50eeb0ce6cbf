/* spin.c: loops forever without output, for interrupt (Ctrl-C / vCtrlC / 0x03) tests. */
volatile unsigned long ticks;

static void tick(void)
{
    ticks++; /* LINE:tick */
}

int main(void)
{
    for (;;) /* LINE:loop */
        tick();
    return 0;
}
