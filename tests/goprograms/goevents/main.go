// Command goevents does one thing the Go runtime does behind a debugger's back, chosen by its
// first argument, so a test can check what a debugger client sees of it:
//
//	spin SECONDS  several goroutines spin and allocate for SECONDS, so the runtime preempts
//	              them with SIGURG over and over; then it prints "spun" and exits 0
//	panic         a goroutine panics and nobody recovers: Go prints the panic and exits 2
//	fatal         unlocking an unlocked mutex: "fatal error: sync: unlock of unlocked mutex"
//	deadlock      main waits on a channel nobody sends on, and no timer is pending:
//	              "fatal error: all goroutines are asleep - deadlock!"
//	mapwrites     several goroutines write one map in a tight loop until the runtime sees
//	              it: "fatal error: concurrent map writes"
//	panicwith K   main panics with a value of kind K (panics.go: error, int, nested, ...)
//	breakpoint    prints "before", calls runtime.Breakpoint(), prints "after", exits 0
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

var sink []byte

//go:noinline
func spin(stop *bool) {
	n := 0
	for !*stop {
		n++
		if n%4096 == 0 {
			sink = make([]byte, 1024) // keeps the collector, and its preemptions, busy
		}
	}
}

//go:noinline
func crash(why string) {
	panic("goevents: " + why) // MARK:crash
}

//go:noinline
func unlockTwice() {
	var mu sync.Mutex
	mu.Unlock() // MARK:unlockTwice
}

//go:noinline
func mapWrite(m map[int]int, i int) {
	m[i%8] = i // MARK:mapWrite
}

//go:noinline
func hardcodedBreakpoint() {
	fmt.Println("before")
	runtime.Breakpoint() // MARK:breakpoint
	fmt.Println("after")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goevents spin SECONDS | panic | fatal | deadlock | "+
			"mapwrites | panicwith KIND | breakpoint")
		os.Exit(64)
	}
	if os.Args[1] != "deadlock" {
		// Any pending timer (even a stopped one, in Go 1.19) keeps the runtime from seeing a
		// deadlock: that mode goes without the watchdog.
		time.AfterFunc(2*time.Minute, func() { os.Exit(3) })
	}
	for _, start := range extraStarters {
		start()
	}
	switch os.Args[1] {
	case "spin":
		seconds, err := strconv.ParseFloat(os.Args[2], 64)
		if err != nil {
			panic(err)
		}
		stop := false
		for i := 0; i < 2*runtime.GOMAXPROCS(0)+1; i++ {
			go spin(&stop)
		}
		time.Sleep(time.Duration(seconds * float64(time.Second)))
		stop = true
		fmt.Println("spun")
	case "panic":
		done := make(chan bool)
		go func() {
			crash("boom") // MARK:crashCaller
			done <- true
		}()
		<-done
	case "fatal":
		done := make(chan bool)
		go func() {
			unlockTwice()
			done <- true
		}()
		<-done
	case "deadlock":
		<-make(chan bool) // MARK:deadlock
	case "mapwrites":
		m := map[int]int{}
		for w := 0; w < 4; w++ {
			go func(w int) {
				for i := w; ; i += 4 {
					mapWrite(m, i)
				}
			}(w)
		}
		select {}
	case "panicwith":
		panicValues[os.Args[2]]()
	case "breakpoint":
		hardcodedBreakpoint()
	default:
		fmt.Fprintf(os.Stderr, "goevents: unknown mode %q\n", os.Args[1])
		os.Exit(64)
	}
}
