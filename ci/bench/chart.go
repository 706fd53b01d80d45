//go:build ignore

// chart turns the runs ci/bench.sh recorded into a markdown table of medians
// and ratios and an SVG chart. Usage (from ci/bench.sh):
//
//	go run ci/bench/chart.go -raw ci/out/raw.txt -md ci/out/bench.md -svg ci/out/bench.svg -machine "..." -cmd "..."
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A scenario is one row group: the benchmark's name and the metric that
// counts.
type scenario struct {
	label, bench, unit string
	lowerBetter        bool
	target             string
	// met reports whether procpipe's median p meets the target, given
	// C's median c, compared unrounded.
	met func(p, c float64) bool
}

var scenarios = []scenario{
	{"rtt 64 B, p50 (µs)", "BenchmarkRTT", "us-p50", true, "<= 1.25x C", func(p, c float64) bool { return p/c <= 1.25 }},
	{"rtt 64 B, mean (µs)", "BenchmarkRTT", "us-mean", true, "<= 1.25x C", func(p, c float64) bool { return p/c <= 1.25 }},
	{"small 16 B (msgs/s)", "BenchmarkSmall", "msgs/s", false, ">= 0.8x C", func(p, c float64) bool { return p/c >= 0.8 }},
	{"batched 16 B (msgs/s)", "BenchmarkBatched", "msgs/s", false, ">= 10 M/s", func(p, c float64) bool { return p >= 10e6 }},
	{"bulk 64 KiB (GB/s)", "BenchmarkBulk/64KiB", "GB/s", false, ">= 0.9x C", func(p, c float64) bool { return p/c >= 0.9 }},
	{"bulk 1 MiB (GB/s)", "BenchmarkBulk/1024KiB", "GB/s", false, ">= 0.9x C", func(p, c float64) bool { return p/c >= 0.9 }},
	{"big 256 MiB, receiver peak RSS / size", "BenchmarkBig", "peak/size", true, "< 1.15", func(p, c float64) bool { return p < 1.15 }},
}

var impls = []string{"procpipe", "C", "Python"}

type key struct{ impl, cpu, bench, unit string }

func main() {
	raw := flag.String("raw", "ci/out/raw.txt", "runs recorded by ci/bench.sh")
	md := flag.String("md", "ci/out/bench.md", "markdown table to write")
	svg := flag.String("svg", "ci/out/bench.svg", "SVG chart to write")
	machine := flag.String("machine", "", "description of the machine")
	cmd := flag.String("cmd", "ci/bench.sh", "command that reproduces the runs")
	reps := flag.Int("reps", 3, "runs per cell")
	flag.Parse()

	vals := map[key][]float64{}
	f, err := os.Open(*raw)
	if err != nil {
		log.Fatal(err)
	}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// impl cpu BenchmarkName N v unit v unit ...
		fs := strings.Fields(s.Text())
		if len(fs) < 4 {
			continue
		}
		impl, cpu, name := fs[0], fs[1], fs[2]
		for i := 4; i+1 < len(fs); i += 2 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				continue
			}
			k := key{impl, cpu, name, fs[i+1]}
			vals[k] = append(vals[k], v)
		}
	}
	f.Close()
	med := func(k key) (float64, bool) {
		v := vals[k]
		if len(v) == 0 {
			return 0, false
		}
		v = slices.Clone(v)
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2], true
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
	}

	// spread gives the lowest and highest procpipe/C ratio of one
	// repetition: the i-th runs of both were made in the same repetition,
	// one after the other, so their ratio shows what one run can give.
	spread := func(pp, c key) string {
		a, b := vals[pp], vals[c]
		if len(a) == 0 || len(a) != len(b) {
			return "—"
		}
		lo, hi := a[0]/b[0], a[0]/b[0]
		for i := range a {
			lo, hi = min(lo, a[i]/b[i]), max(hi, a[i]/b[i])
		}
		return fmt.Sprintf("%.2f-%.2fx", lo, hi)
	}

	type row struct {
		s          scenario
		ends, cpu  string
		v          [3]float64
		ok         [3]bool
		relC, relP float64 // procpipe's and Python's speed relative to C
		spread     string  // procpipe/C, lowest to highest repetition
	}
	var rows []row
	for _, sc := range scenarios {
		for _, ends := range []string{"duplex", "oneway"} {
			for _, cpu := range []string{"free", "pinned"} {
				r := row{s: sc, ends: ends, cpu: cpu}
				for i, impl := range impls {
					r.v[i], r.ok[i] = med(key{impl, cpu, sc.bench + "/" + ends, sc.unit})
				}
				r.spread = spread(key{"procpipe", cpu, sc.bench + "/" + ends, sc.unit}, key{"C", cpu, sc.bench + "/" + ends, sc.unit})
				rel := func(x, c float64) float64 {
					if sc.lowerBetter {
						return c / x
					}
					return x / c
				}
				if r.ok[0] && r.ok[1] {
					r.relC = rel(r.v[0], r.v[1])
				}
				if r.ok[2] && r.ok[1] {
					r.relP = rel(r.v[2], r.v[1])
				}
				rows = append(rows, r)
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Medians of %d runs each. Machine: %s.\n", *reps, *machine)
	fmt.Fprintf(&b, "Ratios are procpipe's value over the other's: for rtt and big lower is better, for the rest higher.\n")
	fmt.Fprintf(&b, "duplex = socketpair (C: socketpair), oneway = pipes (C: pipe(2)); pinned = both processes on CPU 0 (taskset -c 0).\n")
	fmt.Fprintf(&b, "The range column gives the lowest and highest procpipe/C ratio of a single repetition.\n")
	fmt.Fprintf(&b, "The met column compares unrounded medians with the target.\n")
	fmt.Fprintf(&b, "Reproduce: `%s`\n\n", *cmd)
	b.WriteString("| scenario | ends | CPUs | procpipe | C | Python | procpipe/C | procpipe/C range | procpipe/Python | target | met |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		cell := func(i int) string {
			if !r.ok[i] {
				return "—"
			}
			return num(r.v[i])
		}
		ratio := func(i int) string {
			if !r.ok[0] || !r.ok[i] {
				return "—"
			}
			return fmt.Sprintf("%.2fx", r.v[0]/r.v[i])
		}
		met := "—"
		vsC := strings.HasSuffix(r.s.target, " C") // else an absolute target
		switch {
		case !r.ok[0] || vsC && (!r.ok[1] || r.v[1] <= 0):
		case r.s.met(r.v[0], r.v[1]):
			met = "yes"
		case vsC:
			met = fmt.Sprintf("**no** (%.3fx)", r.v[0]/r.v[1])
		default:
			met = fmt.Sprintf("**no** (%s)", num(r.v[0]))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.s.label, r.ends, r.cpu, cell(0), cell(1), cell(2), ratio(1), r.spread, ratio(2), r.s.target, met)
	}
	if err := os.WriteFile(*md, []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}

	// The chart: for each row but big's, a bar for procpipe's and one for
	// Python's speed relative to C's (1 = C; higher is faster).
	const (
		left, barH, gap, width = 330, 9, 8, 900
		top                    = 70
	)
	var chartRows []row
	for _, r := range rows {
		if r.s.bench != "BenchmarkBig" && r.s.unit != "us-mean" {
			chartRows = append(chartRows, r)
		}
	}
	maxRel := 1.5
	for _, r := range chartRows {
		maxRel = max(maxRel, r.relC, r.relP)
	}
	maxRel = min(maxRel, 4)
	scale := float64(width-left-60) / maxRel
	h := top + len(chartRows)*(2*barH+gap) + 60
	var g strings.Builder
	fmt.Fprintf(&g, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, h)
	fmt.Fprintf(&g, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&g, `<text x="10" y="20" font-size="15" font-weight="bold">procpipe and Python multiprocessing.Pipe, speed relative to C (1 = C, higher is faster)</text>`+"\n")
	fmt.Fprintf(&g, `<text x="10" y="38">%s</text>`+"\n", html.EscapeString(*machine))
	fmt.Fprintf(&g, `<text x="10" y="54">Medians of %d runs; rtt by p50. Reproduce: %s</text>`+"\n", *reps, html.EscapeString(*cmd))
	y := top
	for _, r := range chartRows {
		label := fmt.Sprintf("%s, %s, %s", strings.SplitN(r.s.label, " (", 2)[0], r.ends, r.cpu)
		fmt.Fprintf(&g, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+barH+4, html.EscapeString(label))
		for i, rel := range []float64{r.relC, r.relP} {
			color := []string{"#1f77b4", "#ff7f0e"}[i]
			if rel > 0 {
				w := min(rel, maxRel) * scale
				fmt.Fprintf(&g, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, left, y+i*barH, w, barH, color)
				fmt.Fprintf(&g, `<text x="%.1f" y="%d" font-size="9">%.2f</text>`+"\n", float64(left)+w+3, y+i*barH+barH-1, rel)
			}
		}
		y += 2*barH + gap
	}
	x1 := float64(left) + scale
	fmt.Fprintf(&g, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-dasharray="4 3"/>`+"\n", x1, top-6, x1, y)
	fmt.Fprintf(&g, `<text x="%.1f" y="%d" text-anchor="middle">C = 1</text>`+"\n", x1, y+14)
	fmt.Fprintf(&g, `<rect x="%d" y="%d" width="12" height="10" fill="#1f77b4"/><text x="%d" y="%d">procpipe</text>`, left, y+24, left+16, y+33)
	fmt.Fprintf(&g, `<rect x="%d" y="%d" width="12" height="10" fill="#ff7f0e"/><text x="%d" y="%d">Python</text>`+"\n", left+90, y+24, left+106, y+33)
	g.WriteString("</svg>\n")
	if err := os.WriteFile(*svg, []byte(g.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0f k", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
