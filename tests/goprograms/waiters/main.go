// Command waiters parks goroutines in many known states, writes the runtime's own dump of
// every goroutine (runtime.Stack(buf, true)) to the file named by $GOAWARE_DUMP, prints
// "ready" and blocks in stopHere, where the test freezes it and lists the goroutines from
// memory. $GOAWARE_MANY adds that many goroutines parked on one channel.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var sink int

// Starters registered by optional files (cgo.go).
var extraStarters []func()

//go:noinline
func worker(ch chan int) {
	v := <-ch // MARK:worker
	sink += v
}

// recvInline is small enough to be inlined into inlineCaller.
func recvInline(ch chan int) int {
	return <-ch // MARK:recvInline
}

//go:noinline
func inlineCaller(ch chan int) {
	sink += recvInline(ch) // MARK:inlineCaller
}

//go:noinline
func selector(a, b chan int) {
	select { // MARK:selector
	case <-a:
	case <-b:
	}
}

//go:noinline
func sleeper() {
	time.Sleep(time.Hour) // MARK:sleeper
}

//go:noinline
func locker(mu *sync.Mutex) {
	mu.Lock() // MARK:locker
	sink++
	mu.Unlock()
}

//go:noinline
func reader(rw *sync.RWMutex) {
	rw.RLock() // MARK:reader
	sink++
	rw.RUnlock()
}

//go:noinline
func waitGroup(wg *sync.WaitGroup) {
	wg.Wait() // MARK:waitGroup
}

//go:noinline
func condWaiter(c *sync.Cond) {
	c.L.Lock()
	c.Wait() // MARK:condWaiter
	c.L.Unlock()
}

//go:noinline
func acceptor(l net.Listener) {
	c, err := l.Accept() // MARK:acceptor
	if err == nil {
		c.Close()
	}
}

//go:noinline
func syscaller(fd int) {
	var b [1]byte
	syscall.Read(fd, b[:]) // MARK:syscaller
}

//go:noinline
func spin() {
	for { // MARK:spin
		sink++
	}
}

//go:noinline
func sender(ch chan int) {
	ch <- 1 // MARK:sender
}

//go:noinline
func nilRecv() {
	var ch chan int
	<-ch // MARK:nilRecv
}

//go:noinline
func forever() {
	select {} // MARK:forever
}

//go:noinline
func lockedWaiter(ch chan int) {
	runtime.LockOSThread()
	<-ch // MARK:lockedWaiter
}

//go:noinline
func deep(n int, ch chan int) {
	if n == 0 {
		<-ch // MARK:deep
		return
	}
	deep(n-1, ch)
	sink++
}

//go:noinline
func generic[X any](ch chan X) {
	<-ch // MARK:generic
}

type T struct{ ch chan int }

//go:noinline
func (t *T) Wait() {
	<-t.ch // MARK:T.Wait
}

// Outer embeds *T, so Outer.Wait is a compiler-generated wrapper that Go's traceback elides.
type Outer struct{ *T }

type waiter interface{ Wait() }

//go:noinline
func parked(ch chan int) {
	<-ch // MARK:parked
}

//go:noinline
func stopHere(ch chan int) {
	fmt.Println("ready")
	<-ch // MARK:stopHere
}

// userBlocks is the dump without the calling goroutine's block and without main.spin's, so
// two dumps compare equal once every other goroutine sits where it will stay.
func userBlocks(dump []byte) string {
	blocks := strings.Split(string(dump), "\n\n")
	var keep []string
	for _, b := range blocks[1:] {
		if !strings.Contains(b, "main.spin") {
			keep = append(keep, b)
		}
	}
	return strings.Join(keep, "\n\n")
}

func stableDump() []byte {
	buf := make([]byte, 64<<20)
	var last string
	for i := 0; ; i++ {
		n := runtime.Stack(buf, true)
		cur := userBlocks(buf[:n])
		if i > 0 && cur == last || i == 200 {
			return buf[:n]
		}
		last = cur
		time.Sleep(20 * time.Millisecond)
	}
}

func main() {
	time.AfterFunc(5*time.Minute, func() { os.Exit(3) })
	block := make(chan int)

	go worker(block)
	go inlineCaller(block)
	go selector(make(chan int), make(chan int))
	go sleeper()
	var mu sync.Mutex
	mu.Lock()
	go locker(&mu)
	var rw sync.RWMutex
	rw.Lock()
	go reader(&rw)
	var wg sync.WaitGroup
	wg.Add(1)
	go waitGroup(&wg)
	cond := sync.NewCond(&sync.Mutex{})
	go condWaiter(cond)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go acceptor(l)
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		panic(err)
	}
	go syscaller(fds[0])
	go spin()
	go sender(make(chan int)) // nobody receives
	go nilRecv()
	go forever()
	go lockedWaiter(block)
	go deep(20, block)
	go generic[string](make(chan string))
	t := &T{ch: block}
	var w waiter = Outer{t}
	go w.Wait()
	mv := t.Wait
	go mv()
	go func() {
		worker(block) // MARK:closure
	}()
	for _, start := range extraStarters {
		start()
	}
	if n, _ := strconv.Atoi(os.Getenv("GOAWARE_MANY")); n > 0 {
		for i := 0; i < n; i++ {
			go parked(block)
		}
	}

	dump := stableDump()
	if path := os.Getenv("GOAWARE_DUMP"); path != "" {
		if err := os.WriteFile(path, bytes.TrimSpace(dump), 0o644); err != nil {
			panic(err)
		}
	}
	stopHere(block)
}
