// Command hoppers runs four workers whose goroutines hop between the program's threads: each
// round sleeps a millisecond, so the scheduler resumes it on whichever thread is free. Each
// worker records its rounds in counts[id]; the program prints "done" and the counts at the end.
// The tests step one worker with `next` and check that the same goroutine stays selected.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

const workers = 4
const rounds = 2000

var counts [workers]int

//go:noinline
func hop(id, round int) int {
	time.Sleep(time.Millisecond) // MARK:hopSleep
	counts[id] = round + 1        // MARK:hopCount
	runtime.Gosched()             // MARK:hopYield
	return counts[id]             // MARK:hopReturn
}

//go:noinline
func worker(id int, wg *sync.WaitGroup) {
	defer wg.Done()
	round := 0
	for round < rounds {
		round = hop(id, round) // MARK:workerHop
	}
}

func main() {
	runtime.GOMAXPROCS(workers)
	var wg sync.WaitGroup
	for id := 0; id < workers; id++ {
		wg.Add(1)
		go worker(id, &wg)
	}
	wg.Wait()
	fmt.Println("done", counts)
}
