//go:build cgo

package main

/*
static int cvalue(void) { return 7; }
*/
import "C"

// Makes a cgo build link externally and enter C once, as a real cgo program does.
func init() {
	extraStarters = append(extraStarters, func() {
		if C.cvalue() != 7 {
			panic("cgo call returned the wrong value")
		}
	})
}
