package explain

import (
	"context"
	"testing"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
	"github.com/enospc/enospc/limits/clue"
)

// The facts read from real wordings: the errno by number, name and
// strerror text; the operation named or implied; the object.
func TestExtractFacts(t *testing.T) {
	tests := []struct {
		msg   string
		errno clue.Errno
		op    clue.Op
		obj   clue.Obj
	}{
		{`error: Io(Error { repr: Os { code: 28, message: "No space left on device" } })`, clue.ENOSPC, 0, 0},
		{`Error creating recommended watcher: Too many open files (os error 24)`, clue.EMFILE, clue.OpWatch, 0},
		{`sudo: unable to open /etc/sudoers: Too many open files in system`, clue.ENFILE, clue.OpFD, 0},
		{`http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 1s`, clue.EMFILE, clue.OpFD, 0},
		{`mkdir /sys/fs/cgroup/memory/kubepods/besteffort/pod98211fca: cannot allocate memory`, clue.ENOMEM, clue.OpMkdir, clue.ObjCgMemory | clue.ObjCgroup},
		{`2018/09/29 23:34:57 [crit] 4793#4793: *210641 connect() to 10.0.0.1:80 failed (99: Cannot assign requested address) while connecting to upstream`, clue.EADDRNOTAVAIL, clue.OpConnect, 0},
		{`pyuv._cpyuv.error.FSEventError: (-28, 'no space left on device')`, clue.ENOSPC, clue.OpWatch, 0},
		{`fio: pid=97220, err=11/file:engines/libaio.c:353, func=io_queue_init, error=Resource temporarily unavailable`, clue.EAGAIN, clue.OpAIO, 0},
		{`write /sys/fs/cgroup/cpuset/test/cgroup.procs: no space left on device`, clue.ENOSPC, clue.OpCgAttach | clue.OpWrite, clue.ObjCgCpuset | clue.ObjCgroup},
		{`[Errno 122] Disk quota exceeded`, clue.EDQUOT, 0, 0},
		{`RTNETLINK answers: No buffer space available`, clue.ENOBUFS, clue.OpNeigh, 0},
	}
	for _, tt := range tests {
		f := extract(Normalize(tt.msg))
		if f.errno&tt.errno != tt.errno || f.op&tt.op != tt.op || f.obj&tt.obj != tt.obj {
			t.Errorf("%q: errno %b op %b obj %b, want at least %b %b %b", tt.msg, f.errno, f.op, f.obj, tt.errno, tt.op, tt.obj)
		}
	}
}

// The field's priors: the wordings the phrase rules got wrong put their
// true cause first.
func TestFieldPriors(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		// A bare EMFILE from accept, socket, open or pipe is RLIMIT_NOFILE.
		{`2014/10/28 18:09:05 dial tcp :0: too many open files`, "files.process"},
		{`OSError: [Errno 24] Too many open files: '/app/www/%username'`, "files.process"},
		// inotify instances only from inotify_init and its watchers.
		{`kubelet[111106]: F0812 16:26:52.166979  111106 server.go:269] failed to run Kubelet: inotify_init: too many open files`, "inotify.instances"},
		// ENOMEM from mkdir in the memory hierarchy: the kmem leak of 3.10.
		{`applying cgroup configuration for process caused "mkdir /sys/fs/cgroup/memory/docker/4fcdcf0af1d3: cannot allocate memory"`, "cgroups.dying"},
		{`kernel: SLUB: Unable to allocate memory on node -1 (gfp=0x20)`, "cgroups.dying"},
		// inotify ENOSPC worded by the program.
		{`cannot create watch for system table xxxxxxxx: (28) No space left on device`, "inotify.watches"},
		{`addWatch: resource exhausted (No space left on device)`, "inotify.watches"},
		// Limits named without an errno's words.
		{`max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]`, "mapcount"},
		{`Caused by: java.lang.OutOfMemoryError: Map failed`, "mapcount"},
		{`[1]: max file descriptors [4096] for elasticsearch process is too low, increase to at least [65535]`, "files.process"},
		{`FATAL:  could not create shared memory segment: Invalid argument DETAIL:  Failed system call was shmget(key=5432001, size=61816832, 03600).`, "ipc.shm"},
		{`RTNETLINK answers: No buffer space available`, "neighbour"},
		{`The node was low on resource: ephemeral-storage. Container app was using 92Ki, which exceeds its request of 0.`, "disk"},
		{`ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).`, "disk"},
		// Inodes against disk: a tree of many small files.
		{`npm ERR! nospc ENOSPC: no space left on device, open '/app/node_modules/.staging/lodash-1c3e/package.json'`, "inodes"},
	} {
		c, o := Assess(Normalize(tt.msg))
		if o != nil || len(c) == 0 || c[0].Limit != tt.want {
			t.Errorf("%q: %+v (outside %+v), want %s first", tt.msg, c, o, tt.want)
		}
	}
}

// Worded like a hidden limit, naming something else: explain says what it
// is, blames no limit at 0.5 or more, and Label groups it as outside.
func TestOutsideIsAnAnswer(t *testing.T) {
	h := host.New("/nonexistent", "/nonexistent", "/nonexistent")
	for msg, kind := range map[string]string{
		`Error while adding process : 19374 to cgroups: write /sys/fs/cgroup/cpuset/test/cgroup.procs: no space left on device`: "cpuset",
		`Error: error allocating lock for new container: no space left on device`:                                               "locks",
		`[ 7063.247407] Memory cgroup out of memory: Killed process 63214 (uwsgi) total-vm:3149468kB`:                           "oom",
		`FATAL:  sorry, too many clients already`:                                                                               "app",
		`mkdir: cannot create directory 'foo': Too many links`:                                                                  "emlink",
		`-bash: fork: Cannot allocate memory`:                                                                                   "memory",
	} {
		res, err := Explain(context.Background(), h, msg, Options{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outside == nil || res.Outside.Kind != kind || res.Outside.Remedy == "" {
			t.Errorf("%q: outside %+v, want %s", msg, res.Outside, kind)
		}
		for _, c := range res.Causes {
			if c.Confidence >= 0.5 {
				t.Errorf("%q: %s blamed at %.2f", msg, c.Limit, c.Confidence)
			}
		}
		if got := Label(Normalize(msg)); got != "outside:"+kind {
			t.Errorf("%q: Label %q", msg, got)
		}
	}
	// A hidden limit's own words are not outside.
	if _, o := Assess(Normalize(`inotify_add_watch /sys/fs/cgroup/memory/kubepods: no space left on device`)); o != nil {
		t.Errorf("inotify_add_watch named outside: %+v", o)
	}
}

// Words that name a limit elsewhere do not blame it here: a build's
// $(nproc), a certificate's key usage, a supervisor's killed process, a
// Kubernetes namespace in a full disk's message.
func TestNoFalseBlame(t *testing.T) {
	for msg, not := range map[string]string{
		`make -j$(nproc) all: Error 2`:                                                              "nproc",
		`x509: certificate specifies an incompatible key usage`:                                     "keys.count",
		`supervisord: INFO stopped: app (terminated by SIGTERM); killed process 4242`:               "outside:oom",
		`failed to write /var/lib/kubelet/pods/x in namespace kube-system: no space left on device`: "userns",
		`fanotify_init: Operation not permitted`:                                                    "fanotify.groups",
	} {
		for _, c := range Candidates(Normalize(msg)) {
			if c.Limit == not && c.Confidence >= 0.5 {
				t.Errorf("%q: %s at %.2f", msg, c.Limit, c.Confidence)
			}
		}
		if Label(Normalize(msg)) == not {
			t.Errorf("%q: labelled %s", msg, not)
		}
	}
}

// Every limit of the catalog declares its clues, and the model reads
// them all, each limit once, in the catalog's order.
func TestCluesCoverTheCatalog(t *testing.T) {
	ids := map[string]bool{}
	for _, f := range limits.Catalog() {
		for _, l := range f.Limits {
			ids[string(l.ID)] = true
		}
	}
	seen := map[string]bool{}
	for _, lc := range catalogClues() {
		if !ids[string(lc.limit)] {
			t.Errorf("clues for %q, which the catalog does not have", lc.limit)
		}
		if seen[string(lc.limit)] {
			t.Errorf("%q twice in the clue table", lc.limit)
		}
		seen[string(lc.limit)] = true
		if len(lc.clues) == 0 {
			t.Errorf("%q has no clue", lc.limit)
		}
		for _, c := range lc.clues {
			if c.Prior <= 0 || c.Prior >= 1 || c.Why == "" {
				t.Errorf("%s: clue %+v: a prior in (0, 1) and a reason are required", lc.limit, c)
			}
			if c.Errno == 0 && c.Op == 0 && c.Obj == 0 && c.Prog == 0 && c.Words == nil {
				t.Errorf("%s: a clue that holds for every message", lc.limit)
			}
		}
	}
	for id := range ids {
		if !seen[id] {
			t.Errorf("the catalog's %s has no clues", id)
		}
	}
}
