// Command ticks calls tick() N times (its argument, 3000 by default) from a goroutine that
// never blocks, so the runtime preempts it with SIGURG again and again, then prints
// "ticks N" with the number of calls tick counted. The tests put a dprintf in tick.
package main

import (
	"fmt"
	"os"
	"strconv"
)

var calls int

//go:noinline
func tick(i int) {
	calls += 1 + i - i // MARK:tick
}

func main() {
	n := 3000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	for i := 0; i < n; i++ {
		tick(i)
	}
	fmt.Println("ticks", calls)
}
