package limits

import (
	"strings"
	"testing"

	"github.com/enospc/enospc/limits/clue"
)

func TestCatalogValid(t *testing.T) {
	if err := Validate(Catalog()); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	good := func(id ID) Limit {
		return Limit{
			ID: id, Title: "t", Doc: "d", Unit: "u",
			Signatures: []*Signature{NewSignature(`x`)},
			Remedy:     func(Finding) []string { return nil },
			Clues:      []clue.Clue{{Words: []string{"x"}, Prior: 0.5, Why: "w"}},
		}
	}
	fam := func(name string, ls ...Limit) Family {
		return Family{Name: name, Limits: ls, Read: func(*Env) []Finding { return nil }}
	}
	noDoc := good("b")
	noDoc.Doc = ""
	noSig := good("c")
	noSig.Signatures = nil
	badSig := good("s")
	badSig.Signatures = []*Signature{NewSignature(`(?i)unclosed (group`)}
	noRemedy := good("d")
	noRemedy.Remedy = nil
	noClues := good("n")
	noClues.Clues = nil
	badClue := good("p")
	badClue.Clues = []clue.Clue{{Errno: clue.ENOSPC, Prior: 1.5, Why: "w"}, {Prior: 0.5, Why: "everything"}}
	noRead := fam("r", good("e"))
	noRead.Read = nil

	tests := []struct {
		name string
		fams []Family
		want []string // each must appear in the error
	}{
		{"duplicate id across families", []Family{fam("one", good("keys.count")), fam("two", good("keys.count"))},
			[]string{`limit "keys.count": duplicate id`}},
		{"duplicate id in a family", []Family{fam("one", good("a"), good("a"))}, []string{`limit "a": duplicate id`}},
		{"missing doc", []Family{fam("one", good("a"), noDoc)}, []string{`limit "b": needs title, doc and unit`}},
		{"missing signature", []Family{fam("one", noSig)}, []string{`limit "c": no error signatures`}},
		{"signature that does not compile", []Family{fam("one", badSig)}, []string{`limit "s": signature "(?i)unclosed (group"`}},
		{"missing remedy", []Family{fam("one", noRemedy)}, []string{`limit "d": no remedy`}},
		{"malformed ids", []Family{fam("one", good("Keys.Count"), good("keys..count"), good("keys-count"), good(""))},
			[]string{`limit "Keys.Count": malformed id`, `limit "keys..count": malformed id`, `limit "keys-count": malformed id`, `limit "": malformed id`}},
		{"no clues", []Family{fam("one", noClues)}, []string{`limit "n": no clues for explain`}},
		{"bad clues", []Family{fam("one", badClue)}, []string{`limit "p": a clue needs a prior in (0, 1)`, `limit "p": a clue that holds for every message`}},
		{"no Read", []Family{noRead}, []string{`family "r": needs a name and a Read`}},
		{"no name", []Family{fam("", good("a"))}, []string{`family "": needs a name and a Read`}},
		{"no limits", []Family{fam("empty")}, []string{`family "empty": no limits`}},
		{"every fault reported", append(Catalog(), fam("bad", noDoc, noSig, good("disk"))),
			[]string{`limit "b": needs title`, `limit "c": no error signatures`, `limit "disk": duplicate id`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.fams)
			if err == nil {
				t.Fatal("Validate accepted a bad catalog")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d faults reported, want %d:\n%v", n, len(tt.want), err)
			}
		})
	}
}

// realMessages are error messages each limit produces, as programs printed
// them: from the field reports (the README quotes them), the project's design notes, and runs on this
// kernel against small private limits (a 64k tmpfs with 4 inodes, a
// process limit of 1 for a dedicated uid).
var realMessages = map[ID][]string{
	"disk": {
		`dd: error writing '/tmp/mtest/x': No space left on device`,
	},
	"inodes": {
		`touch: cannot touch '/tmp/mtest/f4': No space left on device`,
		`mkdir: cannot create directory ‘/tmp/mtest/d’: No space left on device`,
		// seeds/002: /run out of inodes (505066 of 505078), 354M free.
		`ctr: OCI runtime create failed: no space left on device: unknown`,
	},
	"keys.count": {
		// The lab (lab/runtime): runc in a user namespace, the 201st container with maxkeys 200.
		`unable to join session keyring: unable to create session key: disk quota exceeded`,
	},
	"keys.bytes": {
		// seeds/000, the Jenkins agent (maxbytes 20000), and seeds/001.
		`OCI runtime create failed: container_linux.go:345: starting container process caused "process_linux.go:424: container init caused "join session keyring: create session key: disk quota exceeded"": unknown`,
		`OCI runtime create failed: container_linux.go:349: starting container process caused "process_linux.go:459: container init caused: join session keyring: create session key: disk quota exceeded: unknown`,
	},
	"inotify.watches": {
		// seeds/003: kubelet.
		`E0718 15:20:58.280275 11519 raw.go:140] Failed to watch directory "/sys/fs/cgroup/memory/kubepods": inotify_add_watch /sys/fs/cgroup/memory/kubepods/burstable/pod926b7ff4-7bff-11e8-945b-52540048533c/6e85761a30707b43ed874e0140f58839618285fc90717153b3cbe7f91629ef5a: no space left on device`,
		`Error: ENOSPC: System limit for number of file watchers reached, watch '/home/u/app/src'`,
	},
	"inotify.instances": {
		`Failed to allocate directory watch: Too many open files`,
		`failed to create fsnotify watcher: too many open files`,
	},
	"cgroups": {
		// seeds/004: kubelet event.
		`unable to ensure pod container exists: failed to create container for [kubepods besteffort podc6eeec88-8664-11e9-9524-5254007057ba] : mkdir /sys/fs/cgroup/memory/kubepods/besteffort/podc6eeec88-8664-11e9-9524-5254007057ba: no space left on device`,
	},
	"cgroups.dying": {
		// seeds/004: dockerd.
		`level=error msg="Handler for POST /v1.31/containers/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b/start returned error: OCI runtime create failed: container_linux.go:348: starting container process caused \"process_linux.go:279: applying cgroup configuration for process caused \\\"mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod79fe803c-072f-11e9-90ca-525400090c71/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b: no space left on device\\\"\": unknown"`,
	},
	"pids": {
		`/bin/bash: fork: retry: Resource temporarily unavailable`,
		`/bin/bash: fork: Resource temporarily unavailable`,
	},
	"threads": {
		`runtime/cgo: pthread_create failed: Resource temporarily unavailable`,
		`java.lang.OutOfMemoryError: unable to create new native thread`,
	},
	"files": {
		`VFS: file-max limit 65536 reached`,
		`http: Accept error: accept tcp [::]:8080: accept4: too many open files in system; retrying in 5ms`,
	},
	"mounts": {
		// seeds/003: runc.
		`container init caused \"rootfs_linux.go:58: mounting \\\"/sys\\\" to rootfs \\\"/var/lib/containers/storage/overlay/051e985771cc69f3f699895a1dada9ef6483e912b46a99e004af7bb4852183eb/merged\\\" at \\\"/var/lib/containers/storage/overlay/051e985771cc69f3f699895a1dada9ef6483e912b46a99e004af7bb4852183eb/merged/sys\\\" caused \\\"no space left on device\\\"\""`,
	},
	"leak.keyrings": {
		// The lab (lab/runtime/dockerkeys_test.go): docker 20.10.24, runc
		// 1.1.5, userns-remap, the uid's maxkeys reached.
		`docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: unable to join session keyring: unable to create session key: disk quota exceeded: unknown.`,
		// seeds/000: the Jenkins agent's docker, keys held by containers.
		`OCI runtime create failed: container_linux.go:345: starting container process caused "process_linux.go:424: container init caused \"join session keyring: create session key: disk quota exceeded\"": unknown`,
	},
	"leak.cgroups": {
		// seeds/004: kubelet event; leaked container cgroups hold memory
		// cgroup ids like dying ones.
		`unable to ensure pod container exists: failed to create container for [kubepods besteffort podc6eeec88-8664-11e9-9524-5254007057ba] : mkdir /sys/fs/cgroup/memory/kubepods/besteffort/podc6eeec88-8664-11e9-9524-5254007057ba: no space left on device`,
	},
	"leak.fifo": {
		// The containerd fifo report (containerd#2421), as ctr prints it.
		`ctr: OCI runtime create failed: no space left on device: unknown`,
	},
}

// foreignMessages must not match a limit: they belong to other causes.
var foreignMessages = map[ID][]string{
	"keys.count":        {realMessages["inotify.watches"][0], realMessages["cgroups"][0]},
	"keys.bytes":        {realMessages["inotify.watches"][0], realMessages["cgroups"][0]},
	"inotify.watches":   {realMessages["keys.bytes"][0], realMessages["cgroups"][0], realMessages["disk"][0]},
	"inotify.instances": {realMessages["files"][1], realMessages["inotify.watches"][0]},
	"cgroups.dying":     {realMessages["inotify.watches"][0], realMessages["inodes"][0]},
	"files":             {realMessages["inotify.instances"][0]},
	"threads":           {realMessages["pids"][0]},
	"leak.fifo":         {realMessages["cgroups"][0], realMessages["inotify.watches"][0]},
}

func matches(l Limit, msg string) bool {
	for _, re := range l.Signatures {
		if re.MatchString(msg) {
			return true
		}
	}
	return false
}

func TestSignaturesMatchRealMessages(t *testing.T) {
	ids := map[ID]bool{}
	for _, f := range Catalog() {
		for _, l := range f.Limits {
			ids[l.ID] = true
			msgs := realMessages[l.ID]
			if len(msgs) == 0 {
				t.Errorf("%s: no real error message to test its signatures on", l.ID)
			}
			for _, m := range msgs {
				if !matches(l, m) {
					t.Errorf("%s: no signature matches %q", l.ID, m)
				}
			}
			for _, m := range foreignMessages[l.ID] {
				if matches(l, m) {
					t.Errorf("%s: a signature matches another cause's message %q", l.ID, m)
				}
			}
		}
	}
	for id := range realMessages {
		if !ids[id] {
			t.Errorf("messages for %s, which is not in the catalog", id)
		}
	}
}

func TestLookup(t *testing.T) {
	l, ok := Lookup("keys.bytes")
	if !ok || l.Unit != "bytes" {
		t.Errorf("Lookup(keys.bytes) = %+v, %v", l.ID, ok)
	}
	if _, ok := Lookup("keys"); ok {
		t.Error("Lookup(keys) found a limit; ids are matched whole")
	}
}
