// Command mkmlp writes a small random MLP as an ONNX file, for demos and benchmarks:
//
//	go run ./serving/model/onnx/onnxtest/mkmlp -in 3 -hidden 16 -seed 1 -o churn.onnx
//
// The model takes "features" [N, in] float and returns "score" [N, 1] float in (0, 1).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

func main() {
	in := flag.Int("in", 3, "input features per row")
	hidden := flag.Int("hidden", 16, "hidden units")
	seed := flag.Uint64("seed", 1, "weight seed")
	out := flag.String("o", "model.onnx", "output file")
	flag.Parse()
	if *in <= 0 || *hidden <= 0 {
		fmt.Fprintln(os.Stderr, "mkmlp: -in and -hidden must be positive")
		os.Exit(2)
	}
	if err := os.WriteFile(*out, onnxtest.NewMLP(*in, *hidden, *seed).Model(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "mkmlp:", err)
		os.Exit(1)
	}
}
