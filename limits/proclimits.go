package limits

// Per-process limits that a container's processes reach while the host has
// room:
//
// nproc: RLIMIT_NPROC ("ulimit -u", docker --ulimit nproc) caps the tasks,
// threads included, of the process's real uid, counted across every
// process of that uid, containers included: with userns-remap all of a
// daemon's containers share one host uid. fork and pthread_create fail with
// EAGAIN ("fork: Resource temporarily unavailable", Go's "pthread_create
// failed", Java's "unable to create new native thread"). Usage: the tasks of
// each uid (the census); max: the lowest soft RLIMIT_NPROC among that uid's
// biggest processes (/proc/PID/limits, read for a few processes only). Root
// is exempt, and so is a process with CAP_SYS_RESOURCE.
//
// files.process: RLIMIT_NOFILE ("ulimit -n", LimitNOFILE=, docker
// --ulimit nofile) caps one process's open files: open, accept and socket
// fail with EMFILE, "too many open files" (ENFILE, "in system", is the
// host's fs.file-max: `files`). Read for the processes with the most fds.
// fs.nr_open is the highest value the limit can be raised to.
//
// mapcount: vm.max_map_count caps the memory mappings of one process;
// mmap fails with ENOMEM. Elasticsearch refuses to start below 262144
// ("max virtual memory areas vm.max_map_count [65530] is too low"); Java
// and databases that map many files die with "Cannot allocate memory".
// Counted from /proc/PID/maps for the processes with the largest virtual
// size only: maps is long and costly to read.
//
// All three are per process: a lab would only restate setrlimit; the
// golden fixture shows each one.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits/clue"
)

// How many processes have their limits or maps read.
const (
	nprocProbe  = 8  // per uid, the biggest by threads
	nofileProbe = 16 // over the host, the most fds
	// and all with at least nofileProbeFDs fds, up to nofileProbeMax
	nofileProbeFDs = 48
	nofileProbeMax = 256
	mapcountRead   = 5 // over the host, the largest VmSize
)

// The IDs of this file's limits.
const (
	FilesProcess ID = "files.process"
	Mapcount     ID = "mapcount"
	NProc        ID = "nproc"
)

var procLimitsFamily = Family{
	Name: "process limits",
	Limits: []Limit{
		{
			ID:    NProc,
			Clues: nprocClues,
			Title: "tasks per uid (RLIMIT_NPROC, ulimit -u)",
			Unit:  "tasks",
			Doc: "Processes and threads of one real uid against the lowest soft RLIMIT_NPROC of its biggest processes. " +
				"Counted across all of that uid's processes, containers included: with userns-remap every container " +
				"of a daemon shares the uid. Root and CAP_SYS_RESOURCE are exempt.",
			Signatures: []*Signature{
				NewSignature(`(?i)may need to increase max user processes`),
				NewSignature(`(?i)max number of threads \[\d+\] for user`),
				NewSignature(`(?i)\b(ulimit -u|RLIMIT_NPROC|nproc)\b`),
				// The same EAGAIN as pids.max's: the host tells which.
				NewSignature(`(?i)pthread_create failed: resource temporarily unavailable`),
				NewSignature(`(?i)fork/exec \S+: resource temporarily unavailable`),
			},
			Remedy: nprocRemedy,
		},
		{
			ID:    FilesProcess,
			Clues: filesProcessClues,
			Title: "open files per process (RLIMIT_NOFILE, ulimit -n)",
			Unit:  "files",
			Doc: "Open file descriptors of one process against its soft RLIMIT_NOFILE; the processes with the most " +
				"fds are read. fs.nr_open bounds how far the limit can be raised.",
			Signatures: []*Signature{
				NewSignature(`(?i)too many open files($|[^ ]| [^i])`),
				NewSignature(`(?i)\b(ulimit -n|RLIMIT_NOFILE|LimitNOFILE|max open files)\b`),
			},
			Remedy: nofileRemedy,
		},
		{
			ID:    Mapcount,
			Clues: mapcountClues,
			Raise: mapcountRaise,
			Title: "memory mappings per process (vm.max_map_count)",
			Unit:  "mappings",
			Doc: "Memory mappings of one process against vm.max_map_count; mmap fails with ENOMEM past it. " +
				"Elasticsearch requires 262144. Read for the processes with the largest virtual size.",
			Signatures: []*Signature{
				NewSignature(`(?i)max_map_count`),
				NewSignature(`(?i)max virtual memory areas`),
			},
			Remedy: mapcountRemedy,
		},
	},
	Read: readProcLimits,
}

// rlimits are the soft limits read from /proc/PID/limits; -1 is unlimited.
type rlimits struct {
	nproc, nofile int64
}

// parseLimits reads "Max processes" and "Max open files" from
// /proc/PID/limits: "Max open files   1024   524288   files".
func parseLimits(b []byte) (rlimits, error) {
	// Parsed in place, without splitting the file into strings: it is
	// read for thousands of processes per check.
	r := rlimits{nproc: -2, nofile: -2}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("Max processes")):
			dst, line = &r.nproc, line[len("Max processes"):]
		case bytes.HasPrefix(line, []byte("Max open files")):
			dst, line = &r.nofile, line[len("Max open files"):]
		default:
			continue
		}
		soft, rest := nextField(line)
		if hard, _ := nextField(rest); len(hard) == 0 {
			return r, fmt.Errorf("limits: malformed line %q", line)
		}
		v := int64(-1)
		if string(soft) != "unlimited" {
			// The kernel prints an rlim_t (%lu), RLIM_INFINITY as
			// "unlimited": never a sign.
			n, err := strconv.ParseUint(string(soft), 10, 63)
			if err != nil {
				return r, fmt.Errorf("limits: %q: %v", soft, err)
			}
			v = int64(n)
		}
		*dst = v
	}
	if r.nproc == -2 || r.nofile == -2 {
		return r, fmt.Errorf("limits: no Max processes or Max open files line")
	}
	return r, nil
}

// nextField returns the first field of b, fields separated by ASCII
// white space as the kernel prints its tables, and what follows it.
func nextField(b []byte) (field, rest []byte) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

func readProcLimits(env *Env) []Finding {
	if env.Census == nil {
		err := fmt.Errorf("no process census: %v", env.CensusErr)
		return []Finding{unknown("nproc", "all uids", "tasks", err), unknown("files.process", "all processes", "files", err),
			unknown("mapcount", "all processes", "mappings", err)}
	}
	limitsOf := func(p *census.Process) (rlimits, error) {
		var r rlimits
		err := env.Host.ViewProc(func(b []byte) error {
			var err error
			r, err = parseLimits(b)
			return err
		}, strconv.Itoa(p.PID), "limits")
		return r, err
	}
	var out []Finding
	out = append(out, readNproc(env, limitsOf)...)
	out = append(out, readNofile(env, limitsOf)...)
	out = append(out, readMapcount(env)...)
	return out
}

func readNproc(env *Env, limitsOf func(*census.Process) (rlimits, error)) []Finding {
	byUID := map[int][]*census.Process{}
	tasks := map[int]int64{}
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		byUID[p.UID] = append(byUID[p.UID], p)
		tasks[p.UID] += int64(max(p.Threads, 1))
	}
	var out []Finding
	for uid, procs := range byUID {
		if uid == 0 {
			continue // exempt
		}
		sort.Slice(procs, func(i, j int) bool { return procs[i].Threads > procs[j].Threads })
		u := Finding{Limit: "nproc", Scope: UIDScope(uid), Used: tasks[uid], Unit: "tasks"}
		lowest, read := int64(-1), 0
		var lastErr error
		for _, p := range procs[:min(len(procs), nprocProbe)] {
			r, err := limitsOf(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue // gone since the census
			}
			if err != nil {
				lastErr = err
				continue
			}
			read++
			if r.nproc >= 0 && (lowest < 0 || r.nproc < lowest) {
				lowest = r.nproc
			}
		}
		if read == 0 && lastErr == nil {
			continue
		}
		if read == 0 {
			u = unknown("nproc", u.Scope, "tasks", fmt.Errorf("no process of the uid's limits could be read: %v", lastErr))
			u.NeedsRoot = !env.Root
			out = append(out, u)
			continue
		}
		if lowest < 0 {
			continue // unlimited everywhere: no row
		}
		u.Max = lowest
		h := newHolders(env, topConsumers)
		for _, p := range procs {
			h.addProcess(p, p.UID, int64(max(p.Threads, 1)))
		}
		u.setHolders(h)
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope < out[j].Scope })
	return out
}

func readNofile(env *Env, limitsOf func(*census.Process) (rlimits, error)) []Finding {
	procs := make([]*census.Process, 0, len(env.Census.Processes))
	for i := range env.Census.Processes {
		if env.Census.Processes[i].FDErr == nil {
			procs = append(procs, &env.Census.Processes[i])
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].FDs > procs[j].FDs })
	// The processes with the most fds, and every one with enough of them
	// to be near a small limit (a service started with LimitNOFILE=64).
	n := min(len(procs), nofileProbe)
	for n < len(procs) && n < nofileProbeMax && procs[n].FDs >= nofileProbeFDs {
		n++
	}
	var out []Finding
	var fullest *Finding
	for _, p := range procs[:n] {
		r, err := limitsOf(p)
		if err != nil || r.nofile <= 0 {
			continue
		}
		u := Finding{Limit: "files.process", Scope: fmt.Sprintf("pid %d (%s)", p.PID, p.Comm), Used: int64(p.FDs), Max: r.nofile, Unit: "files",
			Consumers: []Consumer{{PID: p.PID, UID: intp(p.UID), Comm: p.Comm, Count: int64(p.FDs)}}}
		// Every process at its warning threshold is a row; of the
		// others, only the fullest.
		if u.Ratio() >= env.Thresholds.Warn {
			out = append(out, u)
			continue
		}
		if fullest == nil || u.Ratio() > fullest.Ratio() {
			c := u
			fullest = &c
		}
	}
	if len(out) == 0 && fullest != nil {
		out = append(out, *fullest)
	}
	return out
}

func readMapcount(env *Env) []Finding {
	maxMaps, err := env.Host.SysctlInt("vm.max_map_count")
	if err != nil {
		return []Finding{unknown("mapcount", "largest processes", "mappings", err)}
	}
	procs := make([]*census.Process, 0, len(env.Census.Processes))
	for i := range env.Census.Processes {
		procs = append(procs, &env.Census.Processes[i])
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].VmSizeKB > procs[j].VmSizeKB })
	var best *Finding
	var out []Finding
	for _, p := range procs[:min(len(procs), mapcountRead)] {
		b, err := env.Host.ReadProc(strconv.Itoa(p.PID) + "/maps")
		if err != nil {
			continue
		}
		// The kernel's map_count leaves out the vsyscall gate, which maps
		// lists.
		n := int64(bytes.Count(b, []byte{'\n'}))
		if bytes.Contains(b, []byte("[vsyscall]")) {
			n--
		}
		u := Finding{Limit: "mapcount", Scope: fmt.Sprintf("pid %d (%s)", p.PID, p.Comm), Used: n, Max: maxMaps, Unit: "mappings",
			Consumers: []Consumer{{PID: p.PID, UID: intp(p.UID), Comm: p.Comm, Count: n}}}
		if u.Ratio() >= env.Thresholds.Warn {
			out = append(out, u)
			continue
		}
		if best == nil || u.Used > best.Used {
			c := u
			best = &c
		}
	}
	if len(out) == 0 && best != nil {
		out = append(out, *best)
	}
	return out
}

func nprocRemedy(u Finding) []string {
	uid := strings.TrimPrefix(u.Scope, "uid ")
	return []string{
		fmt.Sprintf("the tasks of uid %s, containers included, reach its processes' RLIMIT_NPROC (%d): find the biggest (consumers) and whether they leak threads", uid, u.Max),
		fmt.Sprintf("raise it where the processes start: docker run --ulimit nproc=%d, LimitNPROC= in the unit, or nproc in /etc/security/limits.conf for uid %s", max(4*u.Max, 65536), uid),
	}
}

func nofileRemedy(u Finding) []string {
	return []string{
		fmt.Sprintf("%s holds %d of its %d open files: find what it leaks (ls -l /proc/PID/fd) or raise its limit", u.Scope, u.Used, u.Max),
		fmt.Sprintf("raise the soft limit now, keeping the hard one: prlimit --nofile=%d: --pid %s (up to the hard limit; a hard limit can be raised only by root, at most fs.nr_open)", max(4*u.Max, 65536), pidOfScope(u.Scope)),
		fmt.Sprintf("and where it starts: LimitNOFILE=%d:HARD in the unit, docker run --ulimit nofile=%d:HARD (HARD at least today's hard limit, prlimit --pid %s shows it)", max(4*u.Max, 65536), max(4*u.Max, 65536), pidOfScope(u.Scope)),
	}
}

// pidOfScope is the pid of a "pid N (comm)" scope.
func pidOfScope(scope string) string {
	f := strings.Fields(strings.TrimPrefix(scope, "pid "))
	if len(f) == 0 {
		return "PID"
	}
	return quote.Shell(f[0])
}

// mapcountRaise: twice the limit, at least the 262144 Elasticsearch needs.
var mapcountRaise = raiseTo("vm.max_map_count", func(u Finding, cur int64) int64 { return max(262144, 2*cur) },
	"low: a VMA costs about 200 bytes, only when used")

func mapcountRemedy(u Finding) []string {
	want := advised(mapcountRaise, u, nil)
	return []string{
		fmt.Sprintf("raise it now: sysctl -w vm.max_map_count=%d (Elasticsearch needs at least 262144)", want),
		fmt.Sprintf("keep it across reboots: echo 'vm.max_map_count = %d' > /etc/sysctl.d/90-enospc-mapcount.conf", want),
	}
}

// nprocClues are the words and facts of an error message that point to nproc (explain).
var nprocClues = []clue.Clue{
	{Errno: clue.EAGAIN, NotOp: clue.NamedCall, NotObj: clue.ObjCgroup, Prior: 0.3,
		Why: "EAGAIN alone: fork returns it at the uid's RLIMIT_NPROC"},

	{Words: []string{"ulimit -u", "max user processes", "rlimit_nproc", "max number of threads", "number of threads for user"}, NotWords: clue.GoThreadBoilerplate, Prior: 0.9,
		Why: "the message names the per-user process limit (RLIMIT_NPROC, ulimit -u), which counts threads"},
	{Errno: clue.EAGAIN, Words: []string{"nproc"}, Prior: 0.88,
		Why: "EAGAIN with the per-user process limit (nproc) named"},
	{Errno: clue.EAGAIN, Op: clue.OpThread, Prior: 0.75,
		Why: "or at the uid's RLIMIT_NPROC (ulimit -u)"},
	{Words: clue.GoThreadBoilerplate, Prior: 0.82,
		Why: "the Go runtime names ulimit -u after any refused thread: RLIMIT_NPROC in most of its reports, pids.max in containers"},
	{Errno: clue.EAGAIN, Op: clue.OpFork, NotObj: clue.ObjCgroup, Prior: 0.55,
		Why: "or the uid's RLIMIT_NPROC"},
}

// filesProcessClues are the words and facts of an error message that point to files.process (explain).
var filesProcessClues = []clue.Clue{
	{Words: []string{"ulimit -n", "max open files", "max file descriptors"}, Prior: 0.92,
		Why: "the message names the process's open files limit (RLIMIT_NOFILE)"},
	{Errno: clue.EMFILE, Words: []string{"nofile", "rlimit_nofile", "limitnofile"}, Prior: 0.92,
		Why: "EMFILE with the process's RLIMIT_NOFILE named"},
	{Errno: clue.EMFILE, Op: clue.OpFD, NotOp: clue.OpInotify | clue.OpWatch, NotWords: []string{"fanotify"}, Prior: 0.86,
		Why: "accept, socket, open or pipe returns EMFILE at the process's RLIMIT_NOFILE: in the field a bare EMFILE is the process's own limit almost always; inotify's instances show up as EMFILE only from inotify_init and its watchers"},
	{Errno: clue.EMFILE, NotOp: clue.OpInotify | clue.OpWatch | clue.OpFD, NotWords: []string{"fanotify"}, Prior: 0.74,
		Why: "EMFILE, \"too many open files\": the process's RLIMIT_NOFILE"},
}

// mapcountClues are the words and facts of an error message that point to mapcount (explain).
var mapcountClues = []clue.Clue{
	{Errno: clue.ENOMEM, NotOp: clue.NamedCall, Prior: 0.3,
		Why: "ENOMEM alone: mmap returns it at vm.max_map_count"},

	{Words: []string{"max_map_count", "max virtual memory areas", "map count", "memory map areas"}, Prior: 0.93,
		Why: "the message names vm.max_map_count, the mappings one process may have"},
	{Words: []string{"map failed"}, Prior: 0.8,
		Why: "Java's FileChannel.map fails with \"Map failed\" when mmap returns ENOMEM, most often at vm.max_map_count"},
	{Errno: clue.ENOMEM, Op: clue.OpMmap, NotOp: clue.OpFork, Prior: 0.7,
		Why: "mmap and mprotect return ENOMEM at vm.max_map_count as well as when memory is short"},
	{Words: []string{"native memory allocation (mmap) failed"}, Prior: 0.7,
		Why: "the JVM's mmap failed: vm.max_map_count, or memory"},
}
