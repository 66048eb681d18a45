//go:build lab

// Package churn_test drives `enospc churn` against real runtimes: a private
// containerd (its own root, state, sockets, namespace, runc root, and a
// fifo directory on a tmpfs of its own) and runc on a bundle of its own.
// A clean loop must report no leak of its own; the kill-shim fault must be
// reported as leak.fifo at the rate the fifo directory really grows; a
// runc hook leaving one file per cycle must be reported as that tmpfs's
// inodes leaking at 1 per cycle.
package churn_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/churn"
	"github.com/enospc/enospc/lab/labkit"
)

func TestMain(m *testing.M) { labkit.Main(m) }

// result is `enospc churn -o json`, decoded strictly: the contract is
// exactly these keys.
type result struct {
	Runtime    string `json:"runtime"`
	Cycles     int    `json:"cycles"`
	Steps      int    `json:"steps"`
	Errors     int    `json:"errors"`
	Leaks      []leak `json:"leaks"`
	SamplesCSV string `json:"samples_csv"`
	StepsCSV   string `json:"steps_csv"`
}

type leak struct {
	Limit              string     `json:"limit"`
	Scope              string     `json:"scope"`
	PerCycle           float64    `json:"per_cycle"`
	CI                 [2]float64 `json:"ci"`
	CyclesToExhaustion *int64     `json:"cycles_to_exhaustion"`
}

// runChurn runs `enospc churn -o json` with args, bounded in time, and
// decodes its output strictly.
func runChurn(t *testing.T, timeout time.Duration, dir string, args ...string) (*result, int, string) {
	t.Helper()
	a := append([]string{"churn", "-o", "json",
		"--steps-csv", filepath.Join(dir, "steps.csv"), "--samples-csv", filepath.Join(dir, "samples.csv")}, args...)
	cmd := exec.Command(labkit.Bin(), a...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		// SIGINT: churn cleans up on its own context, then exits.
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			cmd.Process.Kill()
			<-done
		}
		t.Fatalf("enospc churn did not finish within %s\nstderr:\n%s", timeout, stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("enospc churn %s: exit %d in %s", strings.Join(args, " "), code, time.Since(start).Round(time.Second))
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	dec.DisallowUnknownFields()
	var r result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("enospc churn (exit %d): output is not the JSON contract: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	var keys map[string]json.RawMessage
	json.Unmarshal(stdout.Bytes(), &keys)
	if len(keys) != 7 {
		t.Errorf("churn JSON has keys %v, want exactly runtime, cycles, steps, errors, leaks, samples_csv, steps_csv", mapKeys(keys))
	}
	for _, l := range r.Leaks {
		t.Logf("leak: %s %q %.4g/cycle [%.4g, %.4g] exhaustion %v", l.Limit, l.Scope, l.PerCycle, l.CI[0], l.CI[1], deref(l.CyclesToExhaustion))
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("stderr:\n%s", s)
	}
	return &r, code, stderr.String()
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func mapKeys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// findLeak returns the leak of limit in scope, nil when there is none.
func findLeak(r *result, limit string, scope func(string) bool) *leak {
	for i := range r.Leaks {
		if r.Leaks[i].Limit == limit && scope(r.Leaks[i].Scope) {
			return &r.Leaks[i]
		}
	}
	return nil
}

// ownLeaks are the leaks in what belongs to the test: the runtime's
// footprint but its RSS, leak.*, and every scope below the test's
// directories.
// Leaks elsewhere are of the host, shared with other work, and are logged.
func ownLeaks(t *testing.T, r *result, dirs ...string) []leak {
	var own []leak
	for _, l := range r.Leaks {
		if l.Limit == churn.FootRSS {
			// Measured and reported, not asserted: a Go daemon's heap
			// grows for longer than a lab loop runs before it settles.
			t.Logf("the daemon's RSS grew through the run: %.4g bytes per cycle [%.4g, %.4g]", l.PerCycle, l.CI[0], l.CI[1])
			continue
		}
		if l.Limit == churn.FootShimSockets {
			// The host's shim socket directory, shared by every
			// containerd of the machine (the other labs' too).
			t.Logf("%s grew %.4g per cycle", churn.ShimSocketDir, l.PerCycle)
			continue
		}
		mine := strings.HasPrefix(l.Limit, "runtime.") || strings.HasPrefix(l.Limit, "leak.")
		for _, d := range dirs {
			mine = mine || strings.Contains(l.Scope, d)
		}
		if mine {
			own = append(own, l)
		} else {
			t.Logf("host-wide series moving with other work on this machine (not the loop's own scope): %s %q %.4g/cycle", l.Limit, l.Scope, l.PerCycle)
		}
	}
	return own
}

// samples reads the samples CSV: series (limit, scope) -> cycle -> used.
func samples(t *testing.T, path string) map[[2]string]map[int]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("samples CSV: %v", err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], churn.SamplesHeader) {
		t.Fatalf("samples CSV header %v, want %v", rows[0], churn.SamplesHeader)
	}
	out := map[[2]string]map[int]int64{}
	for _, r := range rows[1:] {
		c, _ := strconv.Atoi(r[0])
		v, _ := strconv.ParseInt(r[4], 10, 64)
		k := [2]string{r[2], r[3]}
		if out[k] == nil {
			out[k] = map[int]int64{}
		}
		out[k][c] = v
	}
	return out
}

// stepRows reads the steps CSV.
func stepRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("steps CSV: %v", err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], churn.StepsHeader) {
		t.Fatalf("steps CSV header %v, want %v", rows[0], churn.StepsHeader)
	}
	return rows[1:]
}

// perCycle is the Theil–Sen slope of a sampled series.
func perCycle(series map[int]int64) churn.Slope {
	var cs []int
	for c := range series {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	xs, ys := make([]float64, len(cs)), make([]float64, len(cs))
	for i, c := range cs {
		xs[i], ys[i] = float64(c), float64(series[c])
	}
	return churn.Estimate(xs, ys, 0.95)
}

func mountTmpfs(t testing.TB, dir string, nrInodes int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("enospc-lab-churn", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("mode=0700,size=4m,nr_inodes=%d", nrInodes)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Unmounted by the temp dir's cleanup.
}

func statfs(t *testing.T, path string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return st
}

// containerdLab is a private containerd with the busybox image archived
// for churn's import, and churn's flags to drive it.
type containerdLab struct {
	c    *labkit.Containerd
	ns   string
	args []string
}

func newContainerdLab(t testing.TB, fifoInodes int) *containerdLab {
	ns := fmt.Sprintf("enospc-lab-churn-%d", os.Getpid())
	c := labkit.StartContainerd(t, ns)
	mountTmpfs(t, c.FifoDir, fifoInodes)
	rootfs := filepath.Join(c.Dir, "rootfs")
	labkit.BusyboxRootfs(t, rootfs)
	tar := filepath.Join(c.Dir, "busybox-oci.tar")
	labkit.OCIImageTar(t, rootfs, "enospc.lab/busybox:lab", tar, []string{"sleep", "3600"})
	return &containerdLab{c: c, ns: ns, args: []string{"--runtime", "containerd",
		"--address", c.Sock, "--namespace", ns, "--containerd-state", c.State, "--containerd-root", c.Root,
		"--fifo-dir", c.FifoDir, "--runc-root", c.RuncRoot, "--snapshotter", "native",
		"--image-tar", tar, "--image", "enospc.lab/busybox:lab"}}
}

// assertGone checks that churn left nothing in containerd: no namespace
// of its own, hence no container, task, snapshot or image in it.
func (l *containerdLab) assertGone(t *testing.T) {
	t.Helper()
	out, err := l.c.Ctr(20*time.Second, "namespaces", "ls", "-q")
	if err != nil {
		t.Fatalf("ctr namespaces ls: %v", err)
	}
	if slices.Contains(strings.Fields(out), l.ns) {
		cs, _ := l.c.Ctr(20*time.Second, "-n", l.ns, "containers", "ls", "-q")
		t.Errorf("churn left its namespace %s behind (containers: %q)", l.ns, cs)
	}
	if shims := labkit.PidsWithArg(l.c.Sock); len(shims) > 0 {
		t.Errorf("churn left shims %v running", shims)
	}
	if ents, _ := os.ReadDir(filepath.Join(l.c.State, "io.containerd.runtime.v2.task", l.ns)); len(ents) > 0 {
		t.Errorf("churn left %d task state directories", len(ents))
	}
	// The namespace's cgroup, parent of its containers' (runc made it).
	if ms, _ := filepath.Glob("/sys/fs/cgroup/*/" + l.ns); len(ms) > 0 {
		t.Errorf("churn left the namespace's cgroups %v", ms)
	}
}

// memoryCgroups logs the live and dying memory cgroups per cycle, the
// host's and those under the runtime's own cgroup (a leak there fails the
// test through ownLeaks), and fails when they were not measured.
func memoryCgroups(t *testing.T, s map[[2]string]map[int]int64, cycles int) {
	t.Helper()
	for k, series := range s {
		if k[0] == churn.FootCgroups {
			sl := perCycle(series)
			t.Logf("the runtime's %s: %d at cycle 0, %d at cycle %d: %.3g per cycle [%.3g, %.3g]",
				k[1], series[0], series[cycles], cycles, sl.PerCycle, sl.Lo, sl.Hi)
		}
	}
	for _, lim := range []string{"cgroups.live", "cgroups.dying"} {
		var found bool
		for k, series := range s {
			if k[0] != lim || !strings.Contains(k[1], "memory") {
				continue
			}
			found = true
			if len(series) < 3 || series[cycles] == 0 && series[0] == 0 {
				t.Errorf("%s %q: %d samples, want one every sample", lim, k[1], len(series))
			}
			sl := perCycle(series)
			t.Logf("memory cgroups %s (%s): %d at cycle 0, %d at cycle %d: %.3g per cycle [%.3g, %.3g]",
				strings.TrimPrefix(lim, "cgroups."), k[1], series[0], series[cycles], cycles, sl.PerCycle, sl.Lo, sl.Hi)

		}
		if !found {
			t.Errorf("no %s series of the memory hierarchy in the samples", lim)
		}
	}
}

// A clean containerd loop: the seed's steps, 300 cycles. Nothing of the
// runtime's may leak; the memory cgroups are measured.
func TestChurnContainerdClean(t *testing.T) {
	const cycles = 300
	l := newContainerdLab(t, 4096)
	dir := t.TempDir()
	r, code, _ := runChurn(t, 20*time.Minute, dir, append(l.args, "--cycles", strconv.Itoa(cycles), "--sample-every", "10")...)
	if code == 2 || code == 3 {
		t.Fatalf("the loop failed: exit %d", code)
	}
	if r.Runtime != "containerd" || r.Cycles != cycles || r.Steps < cycles*5 {
		t.Errorf("result: runtime %q, %d cycles, %d steps; want containerd, %d, at least %d", r.Runtime, r.Cycles, r.Steps, cycles, cycles*5)
	}
	if own := ownLeaks(t, r, l.c.Dir); len(own) > 0 {
		t.Errorf("a clean loop reported leaks of its own: %+v", own)
	}
	if code == 0 && len(r.Leaks) > 0 || code == 1 && len(r.Leaks) == 0 {
		t.Errorf("exit %d with %d leaks", code, len(r.Leaks))
	}
	rows := stepRows(t, r.StepsCSV)
	failed := 0
	for _, row := range rows {
		if row[4] != "0" {
			failed++
		}
	}
	if len(rows) != r.Steps || failed != r.Errors {
		t.Errorf("steps CSV has %d rows, %d failed; the result says %d steps, %d errors", len(rows), failed, r.Steps, r.Errors)
	}
	s := samples(t, r.SamplesCSV)
	if n := len(s[[2]string{"leak.fifo", l.c.FifoDir}]); n != cycles/10+1 {
		t.Errorf("leak.fifo sampled %d times, want %d", n, cycles/10+1)
	}
	memoryCgroups(t, s, cycles)
	if ents, _ := os.ReadDir(l.c.FifoDir); len(ents) != 0 {
		t.Errorf("a clean loop left %d fifo directories", len(ents))
	}
	l.assertGone(t)
}

// The kill-shim fault on a fifo tmpfs of the seed's /run: 505,078 inodes.
// Each cycle leaves a fifo directory of three fifos, four inodes; churn
// must say so, as the directory's count shows, and project the seed's
// 126,000 cycles. Then --cleanup-only removes the leaked directories.
func TestChurnContainerdKillShim(t *testing.T) {
	const (
		cycles   = 60
		nrInodes = 505078 // the /run of containerd#2421
	)
	l := newContainerdLab(t, nrInodes)
	dir := t.TempDir()
	r, code, stderr := runChurn(t, 15*time.Minute, dir, append(l.args, "--cycles", strconv.Itoa(cycles), "--sample-every", "5", "--fault", "kill-shim")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a leak)", code)
	}
	// The directory, counted here: one per cycle, four inodes each.
	ents, err := os.ReadDir(l.c.FifoDir)
	if err != nil {
		t.Fatal(err)
	}
	dirs := 0
	for _, e := range ents {
		fifos, _ := os.ReadDir(filepath.Join(l.c.FifoDir, e.Name()))
		if e.IsDir() && len(fifos) == 3 {
			dirs++
		}
	}
	st := statfs(t, l.c.FifoDir)
	used := int64(st.Files - st.Ffree)
	t.Logf("fifo dir after %d cycles: %d directories of 3 fifos, %d inodes in use of %d", cycles, dirs, used, st.Files)
	if dirs != cycles {
		t.Fatalf("the fault left %d fifo directories, want %d: the lab does not reproduce the leak", dirs, cycles)
	}
	truePerCycle := float64(used-1) / cycles // less the tmpfs root
	fifo := findLeak(r, "leak.fifo", func(s string) bool { return s == l.c.FifoDir })
	if fifo == nil {
		t.Fatalf("no leak.fifo leak reported on %s", l.c.FifoDir)
	}
	if fifo.PerCycle != truePerCycle || fifo.CI[0] > truePerCycle || fifo.CI[1] < truePerCycle {
		t.Errorf("leak.fifo %.4g per cycle [%.4g, %.4g], the directory grew %.4g inodes per cycle", fifo.PerCycle, fifo.CI[0], fifo.CI[1], truePerCycle)
	}
	inodes := findLeak(r, "inodes", func(s string) bool { return strings.HasPrefix(s, l.c.FifoDir+" ") })
	if inodes == nil {
		t.Fatalf("no inodes leak reported on the fifo tmpfs %s", l.c.FifoDir)
	}
	if inodes.PerCycle != truePerCycle {
		t.Errorf("inodes of %s: %.4g per cycle, want %.4g", l.c.FifoDir, inodes.PerCycle, truePerCycle)
	}
	dirLeak := findLeak(r, churn.FootFifoDirs, func(s string) bool { return s == l.c.FifoDir })
	if dirLeak == nil || dirLeak.PerCycle != 1 {
		t.Errorf("fifo directories per cycle: %+v, want 1", dirLeak)
	}
	// The projection: what is left at 4 inodes a cycle, plus the cycles
	// run; the seed's loop failed at cycle 126,065.
	if inodes.CyclesToExhaustion == nil {
		t.Fatal("no cycles to exhaustion for the fifo tmpfs")
	}
	left := *inodes.CyclesToExhaustion
	want := int64(st.Ffree) / 4
	total := left + cycles
	t.Logf("projected: %d more cycles, %d in all until the fifo tmpfs of %d inodes is full (containerd#2421: 126,064 cycles)", left, total, nrInodes)
	if left != want {
		t.Errorf("cycles to exhaustion %d, want %d (free inodes / 4)", left, want)
	}
	if math.Abs(float64(total)-126064)/126064 > 0.01 {
		t.Errorf("projected %d cycles in all, the seed measured 126,064", total)
	}
	// containerd 1.6 leaves each killed shim's socket in the host's
	// /run/containerd/s: churn counts them and removes them, since no
	// later cleanup could find them by their hashed names.
	if want := fmt.Sprintf("containerd left %d sockets of the killed shims", cycles); !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	for _, e := range ents {
		fifos, _ := os.ReadDir(filepath.Join(l.c.FifoDir, e.Name()))
		for _, f := range fifos {
			if id, ok := strings.CutSuffix(f.Name(), "-stdin"); ok {
				sum := sha256.Sum256([]byte(filepath.Join(l.c.Sock, l.ns, id)))
				if _, err := os.Lstat(filepath.Join(churn.ShimSocketDir, hex.EncodeToString(sum[:]))); err == nil {
					t.Errorf("the dead shim socket of %s is still in %s", id, churn.ShimSocketDir)
				}
			}
		}
	}
	l.assertGone(t)
	// --cleanup-only removes the leaked fifo directories churn's client made.
	out, err := labkit.Run(2*time.Minute, labkit.Bin(), append([]string{"churn", "--cleanup-only"}, l.args...)...)
	if err != nil {
		t.Fatalf("churn --cleanup-only: %v", err)
	}
	if ents, _ := os.ReadDir(l.c.FifoDir); len(ents) != 0 {
		t.Errorf("--cleanup-only left %d fifo directories (%s)", len(ents), out)
	}
}

// runcLab is a runc bundle on busybox and churn's flags to drive it.
type runcLab struct {
	dir, leakDir string
	args         []string
}

func newRuncLab(t *testing.T, hook bool) *runcLab {
	runc := labkit.RequireTool(t, "runc")
	dir := labkit.TempDir(t, "enospc-lab-churn-runc-")
	rootfs := filepath.Join(dir, "bundle", "rootfs")
	labkit.BusyboxRootfs(t, rootfs)
	leakDir := filepath.Join(dir, "leak")
	mountTmpfs(t, leakDir, 100000)
	spec := runcSpec(rootfs)
	if hook {
		// A hook of the runtime namespace that leaves one file per
		// container, as a buggy hook (a log, a lock) does.
		spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
			Path: "/bin/busybox", Args: []string{"busybox", "mktemp", "-p", leakDir, "hook.XXXXXX"}}}}
	}
	b, _ := json.MarshalIndent(spec, "", "\t")
	if err := os.WriteFile(filepath.Join(dir, "bundle", "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Containers of a loop that failed: their cgroups by id.
		for _, root := range []string{"/sys/fs/cgroup/*/", "/sys/fs/cgroup/"} {
			ms, _ := filepath.Glob(root + churn.IDPrefix + "*")
			for _, m := range ms {
				labkit.KillCgroups(t, strings.TrimPrefix(m, filepath.Dir(m)))
				os.Remove(m)
			}
		}
	})
	return &runcLab{dir: dir, leakDir: leakDir, args: []string{"--runtime", "runc", "--runc", runc,
		"--bundle", filepath.Join(dir, "bundle"), "--runc-root", filepath.Join(dir, "runc")}}
}

// runcSpec is a detached busybox container running sleep, without a
// terminal, in new namespaces, its root read-only.
func runcSpec(rootfs string) *specs.Spec {
	caps := []string{"CAP_KILL"}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"sleep", "3600"}, Env: []string{"PATH=/bin"}, Cwd: "/",
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: "enospc-lab",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=64k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=64k"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// A runc bundle whose hook leaves one file per cycle in a private tmpfs:
// that tmpfs's inodes leak at 1 per cycle. The same bundle without the
// hook: that tmpfs is clean.
func TestChurnRuncHook(t *testing.T) {
	const cycles = 60
	for _, hook := range []bool{true, false} {
		t.Run(fmt.Sprintf("hook=%v", hook), func(t *testing.T) {
			l := newRuncLab(t, hook)
			r, code, _ := runChurn(t, 10*time.Minute, t.TempDir(), append(l.args, "--cycles", strconv.Itoa(cycles), "--sample-every", "5")...)
			if code == 2 || code == 3 {
				t.Fatalf("the loop failed: exit %d", code)
			}
			files, _ := os.ReadDir(l.leakDir)
			t.Logf("the hook's tmpfs holds %d files after %d cycles", len(files), cycles)
			own := ownLeaks(t, r, l.dir)
			lk := findLeak(r, "inodes", func(s string) bool { return strings.HasPrefix(s, l.leakDir+" ") })
			if hook {
				if len(files) != cycles {
					t.Fatalf("the hook left %d files, want %d: the lab does not reproduce the leak", len(files), cycles)
				}
				if lk == nil {
					t.Fatalf("no inodes leak reported on %s", l.leakDir)
				}
				if lk.PerCycle != 1 || lk.CI[0] > 1 || lk.CI[1] < 1 {
					t.Errorf("inodes of %s: %.4g per cycle [%.4g, %.4g], want 1", l.leakDir, lk.PerCycle, lk.CI[0], lk.CI[1])
				}
				if lk.CyclesToExhaustion == nil || *lk.CyclesToExhaustion != int64(statfs(t, l.leakDir).Ffree) {
					t.Errorf("cycles to exhaustion %v, want the free inodes of %s, %d", deref(lk.CyclesToExhaustion), l.leakDir, statfs(t, l.leakDir).Ffree)
				}
				if len(own) != 1 {
					t.Errorf("leaks of the loop's own: %+v, want only the hook's tmpfs", own)
				}
			} else {
				if len(files) != 0 || lk != nil || len(own) != 0 {
					t.Errorf("without the hook: %d files, leaks of its own %+v", len(files), own)
				}
			}
			memoryCgroups(t, samples(t, r.SamplesCSV), cycles)
			if ents, _ := os.ReadDir(filepath.Join(l.dir, "runc")); len(ents) != 0 {
				t.Errorf("churn left %d runc containers", len(ents))
			}
		})
	}
}

// The end of containerd#2421, on a fifo tmpfs of 128 inodes: the kill-shim
// leak fills it in about 31 cycles, then every run fails with "no space
// left on device" while the tmpfs has bytes to spare. churn reports the
// leak it measured on the way, and that the loop failed (exit 2).
func TestChurnContainerdKillShimExhausts(t *testing.T) {
	const nrInodes = 128
	l := newContainerdLab(t, nrInodes)
	dir := t.TempDir()
	r, code, _ := runChurn(t, 10*time.Minute, dir, append(l.args, "--cycles", "100", "--sample-every", "5", "--fault", "kill-shim")...)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (the loop failed)", code)
	}
	st := statfs(t, l.c.FifoDir)
	t.Logf("fifo tmpfs: %d of %d inodes free, %d of %d blocks free", st.Ffree, st.Files, st.Bfree, st.Blocks)
	if st.Ffree > 3 || st.Bfree == 0 {
		t.Errorf("the tmpfs is not out of inodes with blocks to spare")
	}
	var enospc []string
	for _, row := range stepRows(t, r.StepsCSV) {
		if strings.Contains(row[6], "no space left on device") {
			enospc = append(enospc, row[0]+" "+row[2]+": "+row[6])
		}
	}
	if len(enospc) == 0 {
		t.Fatal("no step failed with \"no space left on device\"")
	}
	t.Logf("first failure: cycle %s (%d attempts failed so)", enospc[0], len(enospc))
	if r.Cycles >= 100 {
		t.Errorf("the loop ran all %d cycles on a full tmpfs", r.Cycles)
	}
	fifo := findLeak(r, "leak.fifo", func(s string) bool { return s == l.c.FifoDir })
	if fifo == nil || fifo.CI[0] > 4 || fifo.CI[1] < 4 {
		t.Errorf("leak.fifo %+v, want 4 inodes per cycle inside its interval", fifo)
	}
	l.assertGone(t)
	if _, err := labkit.Run(2*time.Minute, labkit.Bin(), append([]string{"churn", "--cleanup-only"}, l.args...)...); err != nil {
		t.Fatalf("churn --cleanup-only: %v", err)
	}
	if ents, _ := os.ReadDir(l.c.FifoDir); len(ents) != 0 {
		t.Errorf("--cleanup-only left %d fifo directories", len(ents))
	}
}

// Ctrl-C in the middle of the loop: churn stops, removes what it made
// (containers, tasks, snapshots, its namespace) and exits 2.
func TestChurnContainerdInterrupted(t *testing.T) {
	l := newContainerdLab(t, 4096)
	dir := t.TempDir()
	cmd := exec.Command(labkit.Bin(), append([]string{"churn", "-o", "json", "--cycles", "100000", "--parallel", "2",
		"--steps-csv", filepath.Join(dir, "steps.csv"), "--samples-csv", filepath.Join(dir, "samples.csv")}, l.args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Interrupted once containers are on their way.
	running := func() bool {
		ents, _ := os.ReadDir(filepath.Join(l.c.State, "io.containerd.runtime.v2.task", l.ns))
		return len(ents) > 0
	}
	for end := time.Now().Add(2 * time.Minute); !running(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			cmd.Process.Kill()
			t.Fatalf("no task started within 2 minutes\n%s", stderr.String())
		}
	}
	time.Sleep(2 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("churn did not end within 3 minutes of SIGINT\n%s", stderr.String())
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Errorf("exit %v after SIGINT, want 2\n%s", err, stderr.String())
	}
	t.Logf("stderr: %s", strings.TrimSpace(stderr.String()))
	l.assertGone(t)
	if ents, _ := os.ReadDir(l.c.FifoDir); len(ents) != 0 {
		t.Errorf("%d fifo directories left after the interrupted loop", len(ents))
	}
}

// A docker loop through the Engine API on a private dockerd, the seed's
// steps, containers without a network. Debian 12's dockerd (20.10) leaves
// a file per container under <exec-root>/netns (on /run/docker/netns in a
// default install: /run's inodes, as in containerd#2421): churn must see
// exactly that, one per cycle, and nothing else of the runtime's.
func TestChurnDocker(t *testing.T) {
	const cycles = 60
	d := labkit.StartDockerd(t)
	d.ImportBusybox(t, "enospc.lab/busybox:lab")
	r, code, _ := runChurn(t, 15*time.Minute, t.TempDir(), "--runtime", "docker", "--docker-host", d.Sock,
		"--docker-root", d.Root, "--docker-exec-root", d.Exec, "--docker-cgroup-parent", d.CgroupParent, "--image", "enospc.lab/busybox:lab",
		"--cycles", strconv.Itoa(cycles), "--sample-every", "5", "--", "sleep", "3600")
	if code == 2 || code == 3 {
		t.Fatalf("the loop failed: exit %d", code)
	}
	if r.Runtime != "docker" || r.Cycles != cycles || r.Steps < 5*cycles {
		t.Errorf("result: %+v", r)
	}
	// The netns directory, counted here; a file still mounted would pin
	// its network namespace.
	ents, _ := os.ReadDir(filepath.Join(d.Exec, "netns"))
	mounted := 0
	for _, e := range ents {
		var st unix.Statfs_t
		if unix.Statfs(filepath.Join(d.Exec, "netns", e.Name()), &st) == nil && st.Type == unix.NSFS_MAGIC {
			mounted++
		}
	}
	t.Logf("%s/netns holds %d files after %d cycles, %d of them a mounted network namespace", d.Exec, len(ents), cycles, mounted)
	own := ownLeaks(t, r, d.Dir)
	execFiles := findLeak(r, churn.FootFiles, func(s string) bool { return s == d.Exec })
	switch {
	case len(ents) == 0 && execFiles == nil:
		t.Logf("this dockerd leaves no netns file")
	case len(ents) != cycles:
		t.Errorf("%d netns files after %d cycles, want none or one per cycle", len(ents), cycles)
	case execFiles == nil || execFiles.PerCycle != 1 || execFiles.CI[0] > 1 || execFiles.CI[1] < 1:
		t.Errorf("files of %s: %+v, want 1 per cycle, as the netns directory grew", d.Exec, execFiles)
	}
	for _, l := range own {
		if l != *execFiles {
			t.Errorf("a leak of the runtime's besides the netns files: %+v", l)
		}
	}
	if mounted > 0 {
		t.Errorf("%d netns files still mounted: network namespaces pinned", mounted)
	}
	s := samples(t, r.SamplesCSV)
	memoryCgroups(t, s, cycles)
	if n := len(s[[2]string{churn.FootShims, "daemon on " + d.Sock}]); n != cycles/5+1 {
		t.Errorf("dockerd's shims sampled %d times, want %d", n, cycles/5+1)
	}
	out, err := d.Docker(20*time.Second, "ps", "-aq", "--filter", "label="+churn.LabelChurn+"=true")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("churn left containers: %q %v", out, err)
	}
}

// The CRI as kubelet calls it, on containerd's CRI plugin of a private
// containerd: a pod per cycle (RunPodSandbox, CreateContainer,
// StartContainer, StopContainer, RemoveContainer, StopPodSandbox,
// RemovePodSandbox). Nothing of the runtime's leaks, no pod is left.
func TestChurnCRI(t *testing.T) {
	const (
		cycles = 40
		image  = "enospc.lab/busybox:lab"
		pause  = "enospc.lab/pause:lab"
	)
	c := labkit.StartContainerdWith(t, labkit.ContainerdOptions{CRI: true, SandboxImage: pause}, "k8s.io")
	rootfs := filepath.Join(c.Dir, "rootfs")
	labkit.BusyboxRootfs(t, rootfs)
	// The CRI's images live in containerd's namespace k8s.io.
	for _, img := range []struct {
		ref string
		cmd []string
	}{{image, []string{"sh"}}, {pause, []string{"sleep", "3600"}}} {
		tar := filepath.Join(c.Dir, filepath.Base(img.ref)+".tar")
		labkit.OCIImageTar(t, rootfs, img.ref, tar, img.cmd)
		if _, err := c.Ctr(2*time.Minute, "-n", "k8s.io", "images", "import", "--snapshotter", "native", tar); err != nil {
			t.Fatalf("%v\n%s", err, c.Log())
		}
	}
	parent := fmt.Sprintf("/enospc-lab-churn-cri-%d", os.Getpid())
	t.Cleanup(func() {
		labkit.KillCgroups(t, parent)
		labkit.RemoveCgroups(t, parent)
	})
	r, code, _ := runChurn(t, 15*time.Minute, t.TempDir(), "--runtime", "cri", "--cri-endpoint", c.Sock,
		"--cri-cgroup-parent", parent, "--containerd-state", c.State, "--containerd-root", c.Root, "--image", image,
		"--cycles", strconv.Itoa(cycles), "--sample-every", "5", "--", "sleep", "3600")
	if code == 2 || code == 3 {
		t.Fatalf("the loop failed: exit %d\n%s", code, c.Log())
	}
	// run, kill, delete: the CRI has no pause.
	if r.Runtime != "cri" || r.Cycles != cycles || r.Steps < 3*cycles {
		t.Errorf("result: %+v", r)
	}
	if own := ownLeaks(t, r, c.Dir, parent); len(own) > 0 {
		t.Errorf("a clean CRI loop reported leaks of its own: %+v", own)
	}
	rows := stepRows(t, r.StepsCSV)
	for _, row := range rows {
		if row[2] == churn.StepPause {
			t.Fatalf("a pause step through the CRI: %v", row)
		}
	}
	s := samples(t, r.SamplesCSV)
	memoryCgroups(t, s, cycles)
	if n := len(s[[2]string{churn.FootShims, "daemon on " + c.Sock}]); n != cycles/5+1 {
		t.Errorf("the CRI's shims sampled %d times, want %d", n, cycles/5+1)
	}
	out, err := c.Ctr(20*time.Second, "-n", "k8s.io", "containers", "ls", "-q")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("churn left containers (pods' included) in k8s.io: %q %v", out, err)
	}
	if shims := labkit.PidsWithArg(c.Sock); len(shims) > 0 {
		t.Errorf("churn left shims %v running", shims)
	}
}

// A docker loop with userns-remap: container root is a dedicated host uid,
// whose key quota runc charges a session keyring per container (the
// Jenkins agent of the field reports). Whether the loop leaves keyrings
// behind is measured: the uid's keys at every sample, against what
// /proc/key-users shows while containers run and after the loop.
func TestChurnDockerUsernsRemapKeys(t *testing.T) {
	const cycles = 40
	d := labkit.StartDockerdWith(t, labkit.DockerdOptions{UsernsRemap: true})
	d.ImportBusybox(t, "enospc.lab/busybox:lab")
	uid := d.RemapUID
	// What the uid holds while the loop runs, polled here.
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var m int64
		defer func() { peak <- m }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			m = max(m, keyUserKeys(uid))
		}
	}()
	r, code, _ := runChurn(t, 15*time.Minute, t.TempDir(), "--runtime", "docker", "--docker-host", d.Sock,
		"--docker-root", d.Root, "--docker-exec-root", d.Exec, "--docker-cgroup-parent", d.CgroupParent, "--image", "enospc.lab/busybox:lab",
		"--cycles", strconv.Itoa(cycles), "--sample-every", "5", "--", "sleep", "3600")
	close(stop)
	maxKeys := <-peak
	if code == 2 || code == 3 {
		t.Fatalf("the loop failed: exit %d", code)
	}
	t.Logf("uid %d (container root) held up to %d keys while the loop ran", uid, maxKeys)
	if maxKeys == 0 {
		t.Fatalf("uid %d never held a key: runc did not charge the containers' session keyrings to it, nothing to measure", uid)
	}
	scope := "uid " + strconv.Itoa(uid)
	s := samples(t, r.SamplesCSV)
	keys := s[[2]string{"keys.count", scope}]
	after := keyUserKeys(uid)
	// A uid without keys has no line in /proc/key-users, and no row: 0.
	var cs []int
	for c := range keys {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	t.Logf("keys.count of %s at the samples (cycle: keys, absent = 0): %v", scope, keys)
	lk := findLeak(r, "keys.count", func(s string) bool { return s == scope })
	if lk != nil {
		t.Logf("MEASURED: docker with userns-remap leaks %.3g keys per container [%.3g, %.3g] for the remapped uid", lk.PerCycle, lk.CI[0], lk.CI[1])
	} else {
		t.Logf("MEASURED: docker with userns-remap leaves no keyring per container: the remapped uid's keys at the samples, with no container running, stay %v", keys)
	}
	// The daemon makes and drops a key of the remapped uid now and then
	// with no container running (the samples go 1, 0, 1): the count the
	// last sample gave must be one /proc/key-users shows again within a
	// few seconds.
	last := keys[cycles]
	seen := []int64{after}
	for deadline := time.Now().Add(5 * time.Second); after != last && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = keyUserKeys(uid)
		if after != seen[len(seen)-1] {
			seen = append(seen, after)
		}
	}
	if last != after {
		t.Errorf("the last sample counts %d keys of uid %d; /proc/key-users gave %v in the 5 s after the loop", last, uid, seen)
	}
	if lk == nil && len(cs) > 0 && keys[cs[len(cs)-1]]-keys[cs[0]] >= int64(cycles)/2 {
		t.Errorf("the uid's keys grew from %d to %d and churn saw no leak", keys[cs[0]], keys[cs[len(cs)-1]])
	}
}

// keyUserKeys is uid's nkeys in /proc/key-users, 0 without a line.
func keyUserKeys(uid int) int64 {
	b, err := os.ReadFile("/proc/key-users")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == strconv.Itoa(uid)+":" {
			n, _, _ := strings.Cut(f[2], "/")
			v, _ := strconv.ParseInt(n, 10, 64)
			return v
		}
	}
	return 0
}
