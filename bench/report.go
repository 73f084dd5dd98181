package main

import (
	"fmt"
	"io"
	"slices"
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time of the process so far: with the
// wall time it tells a slow run from a starved one on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median[T any](xs []T, less func(a, b T) int) T {
	s := slices.Clone(xs)
	slices.SortFunc(s, less)
	return s[(len(s)-1)/2]
}

func byElapsed(a, b measure) int { return int(a.elapsed - b.elapsed) }

// report prints the runs of vigil and its peer as a Markdown table. The
// ratio is vigil's rate over the peer's, taken run by run (each pair ran
// back to back) and then the median of those.
func report(w io.Writer, title string, vigil, peer []measure) {
	fmt.Fprintf(w, "\n%s, %d runs each\n\n", title, len(vigil))
	fmt.Fprintln(w, "| side | min | median | events/s (median) | CPU s (median) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, rs := range [][]measure{vigil, peer} {
		lo := slices.MinFunc(rs, byElapsed)
		med := median(rs, byElapsed)
		cpu := median(rs, func(a, b measure) int { return int(a.cpu - b.cpu) })
		fmt.Fprintf(w, "| %s | %.2f s | %.2f s | %.0f | %.1f |\n", rs[0].name, lo.elapsed.Seconds(), med.elapsed.Seconds(), med.rate(), cpu.cpu.Seconds())
	}
	var ratios, cpuRatios []float64
	for i := range min(len(vigil), len(peer)) {
		ratios = append(ratios, vigil[i].rate()/peer[i].rate())
		cpuRatios = append(cpuRatios, peer[i].cpu.Seconds()/vigil[i].cpu.Seconds())
	}
	cmp := func(a, b float64) int {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	fmt.Fprintf(w, "\nvigil/peer rate: median %.2f (runs: %s); peer/vigil CPU: median %.2f\n",
		median(ratios, cmp), fmtRatios(ratios), median(cpuRatios, cmp))
}

func fmtRatios(rs []float64) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.2f", r)
	}
	return s
}
