package limits

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fifoTree is a containerd state directory and a fifo directory in a temp
// dir, with ages measured from now.
type fifoTree struct {
	t     *testing.T
	state string
	fifo  string
	now   time.Time
}

func newFifoTree(t *testing.T) *fifoTree {
	root := t.TempDir()
	ft := &fifoTree{t: t, state: filepath.Join(root, "state"), fifo: filepath.Join(root, "fifo"),
		// Whole seconds, so no filesystem's timestamp granularity moves an
		// age across the grace period.
		now: time.Now().Truncate(time.Second)}
	for _, d := range []string{ft.state, ft.fifo} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return ft
}

// task gives a task state under <state>/<runtime>/<namespace>/<id>.
func (ft *fifoTree) task(runtime, ns, id string) {
	if err := os.MkdirAll(filepath.Join(ft.state, runtime, ns, id), 0o700); err != nil {
		ft.t.Fatal(err)
	}
}

// dir makes a fifo directory holding real fifos, last modified age ago.
func (ft *fifoTree) dir(name string, age time.Duration, fifos ...string) {
	d := filepath.Join(ft.fifo, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		ft.t.Fatal(err)
	}
	for _, f := range fifos {
		if err := syscall.Mkfifo(filepath.Join(d, f), 0o700); err != nil {
			ft.t.Fatal(err)
		}
	}
	mt := ft.now.Add(-age)
	if err := os.Chtimes(d, mt, mt); err != nil {
		ft.t.Fatal(err)
	}
}

func stdio(id string) []string { return []string{id + "-stdin", id + "-stdout", id + "-stderr"} }

const hostFifo = "/run/containerd/fifo"

func TestOrphanFifoDirs(t *testing.T) {
	ft := newFifoTree(t)
	old := 2 * fifoGrace
	ft.task("io.containerd.runtime.v2.task", "k8s.io", "live-v2")
	ft.task("io.containerd.runtime.v1.linux", "moby", "live-v1")

	// containerd#2421: a task deleted without its client cleaning up.
	ft.dir("000001714", old, stdio("test.32583")...)
	ft.dir("live2", old, stdio("live-v2")...)
	ft.dir("live1", old, "live-v1-stdout")
	ft.dir("held", old, stdio("held-task")...)
	ft.dir("young", 10*time.Second, stdio("young-task")...)
	ft.dir("at-grace", fifoGrace, "gone-stdin")
	ft.dir("empty", old)
	// One live task makes the whole directory live.
	ft.dir("mixed", old, "dead-stdin", "live-v2-stdin")
	ft.dir("other-files", old, "notes.txt", "gone2-stdout")
	// A stray file beside the directories is not a fifo directory.
	if err := os.WriteFile(filepath.Join(ft.fifo, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	held := map[string]bool{hostFifo + "/held": true}
	orphans, total, err := OrphanFifoDirs(ft.fifo, hostFifo, ft.state, held, ft.now)
	if err != nil {
		t.Fatal(err)
	}
	if total != 9 {
		t.Errorf("total = %d, want 9 directories", total)
	}
	type row struct {
		Path   string
		Tasks  []string
		Inodes int64
		Age    time.Duration
	}
	var got []row
	for _, o := range orphans {
		got = append(got, row{o.Path, o.Tasks, o.Inodes, ft.now.Sub(o.ModTime)})
	}
	want := []row{
		{hostFifo + "/000001714", []string{"test.32583"}, 4, old},
		{hostFifo + "/at-grace", []string{"gone"}, 2, fifoGrace},
		{hostFifo + "/empty", nil, 1, old},
		{hostFifo + "/other-files", []string{"gone2"}, 3, old},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("orphans =\n%+v\nwant\n%+v", got, want)
	}
}

func TestOrphanFifoDirsNoState(t *testing.T) {
	ft := newFifoTree(t)
	ft.dir("a", time.Hour, stdio("a")...)
	ft.dir("b", time.Hour, stdio("b")...)
	// A state directory without runtime subdirectories: nothing is live.
	orphans, total, err := OrphanFifoDirs(ft.fifo, hostFifo, ft.state, nil, ft.now)
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(orphans) != 2 {
		t.Errorf("total %d, orphans %d; want 2, 2", total, len(orphans))
	}
	// The same with the state directory missing altogether.
	orphans, total, err = OrphanFifoDirs(ft.fifo, hostFifo, filepath.Join(ft.state, "missing"), nil, ft.now)
	if err != nil || total != 2 || len(orphans) != 2 {
		t.Errorf("missing state: total %d, orphans %d, %v; want 2, 2, nil", total, len(orphans), err)
	}
	// Everything held: no orphans, still counted.
	held := map[string]bool{hostFifo + "/a": true, hostFifo + "/b": true}
	orphans, total, err = OrphanFifoDirs(ft.fifo, hostFifo, ft.state, held, ft.now)
	if err != nil || total != 2 || len(orphans) != 0 {
		t.Errorf("all held: total %d, orphans %d, %v; want 2, 0, nil", total, len(orphans), err)
	}
	// Held is keyed by host path, not by the path read from here.
	held = map[string]bool{filepath.Join(ft.fifo, "a"): true}
	if orphans, _, _ = OrphanFifoDirs(ft.fifo, hostFifo, ft.state, held, ft.now); len(orphans) != 2 {
		t.Errorf("held by local path: %d orphans, want 2", len(orphans))
	}
}

func TestOrphanFifoDirsErrors(t *testing.T) {
	ft := newFifoTree(t)
	if _, _, err := OrphanFifoDirs(filepath.Join(ft.fifo, "missing"), hostFifo, ft.state, nil, ft.now); !os.IsNotExist(err) {
		t.Errorf("missing fifo dir: %v, want not-exist", err)
	}
	// A namespace entry that is not a directory makes the state unreadable.
	rt := filepath.Join(ft.state, "io.containerd.runtime.v2.task")
	if err := os.MkdirAll(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rt, "default"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := OrphanFifoDirs(ft.fifo, hostFifo, ft.state, nil, ft.now)
	if err == nil || !strings.HasPrefix(err.Error(), "read containerd state "+ft.state+": ") {
		t.Errorf("bad state: %v", err)
	}
}
