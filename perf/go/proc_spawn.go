// SPDX-License-Identifier: MIT
// proc_spawn: N /bin/true children started with os/exec, one goroutine
// each, all at once; every exit status checked. Prints rook-perf's BENCH
// line. Run: go run perf/go/proc_spawn.go [-n N]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := flag.Int("n", 1000, "children")
	flag.Parse()
	var ok int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if exec.Command("/bin/true").Run() == nil {
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	if ok != int64(*n) {
		fmt.Fprintf(os.Stderr, "CHECK FAILED: proc_spawn exits: got %d want %d\n", ok, *n)
		os.Exit(1)
	}
	fmt.Printf("BENCH workload=proc_spawn impl=go threads=%d ops=%d wall_s=%.6f ops_per_s=%.1f\n",
		runtime.GOMAXPROCS(0), *n, wall, float64(*n)/wall)
}
