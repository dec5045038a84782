// Command testenv manages the run directory of the test servers shared by a whole test run
// (internal/testenv.RunDirEnv); the Makefile's test targets use it.
//
//	testenv stop DIR    stop every server recorded in DIR and remove DIR
package main

import (
	"fmt"
	"os"

	"github.com/quiverfs/quiver/internal/testenv"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "stop" {
		fmt.Fprintln(os.Stderr, "usage: testenv stop DIR")
		os.Exit(2)
	}
	if err := testenv.StopShared(os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "testenv stop %s: %v\n", os.Args[2], err)
		os.Exit(1)
	}
}
