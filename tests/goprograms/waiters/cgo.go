//go:build cgo

package main

/*
#include <unistd.h>
static void csleep(void) { for (;;) sleep(1000); }
*/
import "C"

//go:noinline
func cgoSleeper() {
	C.csleep() // MARK:cgoSleeper
}

func init() {
	extraStarters = append(extraStarters, func() { go cgoSleeper() })
}
