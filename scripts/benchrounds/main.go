// Command benchrounds is scripts/badnight's measurer: it runs several
// commands in rounds, each round every command once, in an order that
// rotates from round to round (so that a slow minute of a noisy machine
// falls on all of them), and prints for each the median wall time, the
// median CPU seconds (user+system) and the peak RSS, then the ratios of
// the pairs it is asked to compare.
//
//	benchrounds -rounds 10 -warmup 1 \
//	    -cmd 'check=/tmp/enospc check -o json' \
//	    -cmd 'manual=bash scripts/manual-procedure /run/containerd/fifo' \
//	    -cmd 'node_exporter scrape=curl -fsS -o /dev/null http://127.0.0.1:9100/metrics' \
//	    -server 'node_exporter scrape=4242' \
//	    -pair 'check/manual'
//
// A command is split on spaces, no shell: its CPU time and peak RSS are
// its own and its waited-for descendants' (wait4's rusage: ru_maxrss is
// the largest single process of the tree, as /usr/bin/time %M). For a
// command that asks a server (-server NAME=PID), the server's CPU time
// spent during the command is added to the command's, and the peak RSS is
// the server's (VmHWM). Commands' output is discarded; any exit status is
// accepted (enospc check exits 1-3 on findings) and the last one is shown.
// A run that outlasts -timeout gets SIGQUIT (a Go program prints its
// goroutines), then SIGKILL, after its process tree (states, wait
// channels, kernel stacks) is written down; it is counted as a timeout, left out of the
// medians, and its stderr is kept in -dumps. Death by another signal
// stops the measurement.
//
// -tsv FILE writes one line per command: name, wall median s, CPU median s,
// peak RSS KiB, runs.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type command struct {
	name   string
	argv   []string
	server int // pid of the server the command asks, or 0

	wall, cpu []float64 // seconds, one per measured run
	peakKiB   int64
	lastExit  int
	timeouts  int
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ", ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	rounds := flag.Int("rounds", 10, "measured rounds")
	warmup := flag.Int("warmup", 1, "rounds run first and not counted")
	timeout := flag.Duration("timeout", time.Minute, "bound of one run of one command")
	dumps := flag.String("dumps", os.TempDir(), "directory for the stderr of runs that timed out")
	tsv := flag.String("tsv", "", "write the summary here too, tab-separated")
	var cmdSpecs, serverSpecs, pairSpecs multi
	flag.Var(&cmdSpecs, "cmd", "NAME=COMMAND LINE (repeatable)")
	flag.Var(&serverSpecs, "server", "NAME=PID: that command's cost is in the server PID (repeatable)")
	flag.Var(&pairSpecs, "pair", "A/B: print A's ratios to B (repeatable)")
	flag.Parse()

	var cmds []*command
	byName := map[string]*command{}
	for _, s := range cmdSpecs {
		name, line, ok := strings.Cut(s, "=")
		if !ok || name == "" || len(strings.Fields(line)) == 0 {
			fail("bad -cmd %q: want NAME=COMMAND", s)
		}
		c := &command{name: name, argv: strings.Fields(line)}
		cmds = append(cmds, c)
		byName[name] = c
	}
	for _, s := range serverSpecs {
		name, pid, _ := strings.Cut(s, "=")
		c := byName[name]
		n, err := strconv.Atoi(pid)
		if c == nil || err != nil || n <= 0 {
			fail("bad -server %q: want NAME=PID of a -cmd", s)
		}
		c.server = n
	}
	if len(cmds) == 0 || *rounds < 1 || *warmup < 0 {
		fail("need at least one -cmd and -rounds >= 1")
	}

	// Stopped (SIGTERM, ^C), it takes the command it runs down with it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		if pid := running.Load(); pid > 0 {
			syscall.Kill(-int(pid), syscall.SIGKILL)
		}
		fail("stopped by %v", sig)
	}()

	total := *warmup + *rounds
	for r := 0; r < total; r++ {
		var line []string
		for i := range cmds {
			c := cmds[(r+i)%len(cmds)]
			wall, cpu, rss, code, stderr := c.run(*timeout)
			if code == timedOut {
				f := filepath.Join(*dumps, fmt.Sprintf("benchrounds-timeout-round%d-cmd%d.txt", r+1, (r+i)%len(cmds)+1))
				os.WriteFile(f, stderr, 0o644)
				fmt.Fprintf(os.Stderr, "  TIMEOUT: %s ran longer than %s; killed, left out; its stderr (goroutines) in %s\n", c.name, *timeout, f)
				line = append(line, fmt.Sprintf("%s TIMEOUT", c.name))
				c.timeouts++
				continue
			}
			line = append(line, fmt.Sprintf("%s %.3fs", c.name, wall))
			c.lastExit = code
			if r < *warmup {
				continue
			}
			c.wall = append(c.wall, wall)
			c.cpu = append(c.cpu, cpu)
			c.peakKiB = max(c.peakKiB, rss)
		}
		kind := "round"
		if r < *warmup {
			kind = "warmup"
		}
		fmt.Fprintf(os.Stderr, "  %s %d/%d: %s\n", kind, r+1, total, strings.Join(line, ", "))
	}

	fmt.Printf("| command | wall median | wall min–max | CPU s median (user+sys) | peak RSS MiB | runs | exit |\n")
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	for _, c := range cmds {
		runs := strconv.Itoa(len(c.wall))
		if c.timeouts > 0 {
			runs += fmt.Sprintf(" (+%d timed out)", c.timeouts)
		}
		if len(c.wall) == 0 {
			fmt.Printf("| %s | – | – | – | – | %s | – |\n", c.name, runs)
			continue
		}
		fmt.Printf("| %s | %s | %s–%s | %.3f | %.1f | %s | %d |\n", c.name, dur(median(c.wall)),
			dur(slices.Min(c.wall)), dur(slices.Max(c.wall)), median(c.cpu), float64(c.peakKiB)/1024, runs, c.lastExit)
	}
	if len(pairSpecs) > 0 {
		fmt.Printf("\n| pair (A / B) | wall A / B | CPU A / B | peak RSS A / B |\n|---|---|---|---|\n")
		for _, s := range pairSpecs {
			an, bn, _ := strings.Cut(s, "/")
			a, b := byName[an], byName[bn]
			if a == nil || b == nil {
				fail("bad -pair %q: want A/B, both -cmd names", s)
			}
			fmt.Printf("| %s / %s | %s | %s | %s |\n", a.name, b.name, ratio(median(a.wall), median(b.wall)),
				ratio(median(a.cpu), median(b.cpu)), ratio(float64(a.peakKiB), float64(b.peakKiB)))
		}
	}
	if *tsv != "" {
		var b bytes.Buffer
		for _, c := range cmds {
			fmt.Fprintf(&b, "%s\t%.6f\t%.6f\t%d\t%d\n", c.name, median(c.wall), median(c.cpu), c.peakKiB, len(c.wall))
		}
		if err := os.WriteFile(*tsv, b.Bytes(), 0o644); err != nil {
			fail("%v", err)
		}
	}
}

// timedOut is run's exit status for a run killed at the timeout.
const timedOut = -1

// running is the process (and group) id of the command being run, or 0.
var running atomic.Int64

// run runs the command once: wall seconds, CPU seconds (its own and its
// server's), peak RSS in KiB (its own or its server's), exit status (or
// timedOut) and its stderr.
func (c *command) run(timeout time.Duration) (wall, cpu float64, rssKiB int64, code int, errOut []byte) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr                                  // stdout is discarded (nil: /dev/null)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, killed whole at the timeout
	var s0 float64
	if c.server > 0 {
		s0 = cpuSeconds(c.server)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail("%s: %v", c.name, err)
	}
	running.Store(int64(cmd.Process.Pid))
	defer running.Store(0)
	var killed atomic.Bool
	var tree []byte
	timer := time.AfterFunc(timeout, func() {
		killed.Store(true)
		tree = describeTree(cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(2 * time.Second)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	err := cmd.Wait()
	timer.Stop()
	wall = time.Since(start).Seconds()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if killed.Load() {
		return wall, 0, 0, timedOut, append(tree, stderr.Bytes()...)
	}
	if ws.Signaled() {
		fail("%s: killed by %v (timeout %s?): %v\n%s", c.name, ws.Signal(), timeout, err, tail(stderr.String()))
	}
	code = ws.ExitStatus()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu = tv(ru.Utime) + tv(ru.Stime)
	rssKiB = ru.Maxrss
	if c.server > 0 {
		cpu += cpuSeconds(c.server) - s0
		rssKiB = vmHWM(c.server)
	}
	return wall, cpu, rssKiB, code, nil
}

// describeTree is the state, wait channel and kernel stack of pid and its
// descendants: what a run that hangs is waiting for.
func describeTree(pid int) []byte {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out bytes.Buffer
	var walk func(p, depth int)
	walk = func(p, depth int) {
		read := func(name string) string {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p, name))
			return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		}
		stat := read("stat")
		state := ""
		if i := strings.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			state = stat[i+2 : i+3]
		}
		fmt.Fprintf(&out, "%spid %d state %s wchan %s: %s\n", strings.Repeat("  ", depth), p, state, read("wchan"), read("cmdline"))
		if st := read("stack"); st != "" {
			fmt.Fprintf(&out, "%s\n", st)
		}
		for _, c := range children[p] {
			walk(c, depth+1)
		}
	}
	walk(pid, 0)
	out.WriteString("\n")
	return out.Bytes()
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// cpuSeconds is the user+system time pid has used so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail("server %d: %v", pid, err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// vmHWM is pid's peak resident set in KiB.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fail("server %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func dur(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.1f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func tail(s string) string {
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchrounds: "+format+"\n", args...)
	os.Exit(1)
}
