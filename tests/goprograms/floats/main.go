// Command floats prints floats with the runtime's own print (println, as a panic value is
// printed), so a test can compare the debugger's rendering with it. On stdout, one line per
// value: its float64 and float32 bits in hex; on stderr, the matching println line:
// float64, float32, complex128(v, -v), complex64(v, 2v).
package main

import (
	"fmt"
	"math"
)

func main() {
	values := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 0.1, -0.1, 0.5, 2.5e-7, 1e-4,
		1e-5, 1.0 / 3, 100, 12345.678, 123456, 1234567, 1e6, 1e21, 1 << 60, 9.999999e22,
		5e-324, math.MaxFloat64, math.SmallestNonzeroFloat32, math.MaxFloat32, 3.4028235e38,
		math.Pi, -math.E * 1e-300, math.Inf(1), math.Inf(-1), math.NaN()}
	for _, v := range values {
		fmt.Printf("%016x %08x\n", math.Float64bits(v), math.Float32bits(float32(v)))
		println(v, float32(v), complex(v, -v), complex64(complex(v, 2*v)))
	}
}
