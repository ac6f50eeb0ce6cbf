package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

type myInt int
type myString string
type point struct{ x, y int }
type stringer struct{}

func (stringer) String() string { return "goevents: a Stringer" }

var nowhere *point

// panicValues are what `goevents panicwith KIND` panics with, on main's goroutine, so that a
// test can compare each way Go prints a panic value with what a debugger reads.
var panicValues = map[string]func(){
	"error":     func() { panic(errors.New("goevents: an error")) },
	"wrapped":   func() { panic(fmt.Errorf("goevents: wrapped: %w", io.EOF)) },
	"stringer":  func() { panic(stringer{}) },
	"int":       func() { panic(-42) },
	"uint8":     func() { panic(uint8(200)) },
	"bool":      func() { panic(true) },
	"float":     func() { panic(1.5) },
	"float32":   func() { panic(float32(-0.1)) },
	"complex":   func() { panic(complex(1, -2.5)) },
	"myint":     func() { panic(myInt(7)) },
	"mystring":  func() { panic(myString("goevents")) },
	"struct":    func() { panic(point{1, 2}) },
	"multiline": func() { panic("goevents: line one\nline two") },
	"nested": func() {
		defer func() { panic("goevents: second") }()
		panic("goevents: first")
	},
	"repanic": func() {
		defer func() { panic(recover()) }()
		panic("goevents: again")
	},
	"nilderef": func() { fmt.Println(nowhere.y) },
	// Not a death: a deferred call stops at a hard-coded breakpoint while the panic is in
	// flight, then recovers it, and the program exits 0.
	"inflight": func() {
		defer func() {
			runtime.Breakpoint() // MARK:inflight
			fmt.Fprintln(os.Stderr, "recovered:", recover())
		}()
		panic(fmt.Errorf("goevents: wrapped: %w", errors.New("goevents: an error")))
	},
}
