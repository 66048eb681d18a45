package fix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// fakeDocker is a Docker Engine API on a unix socket: the containers it
// lists and inspects, its docker info, and the DELETEs it receives.
type fakeDocker struct {
	containers map[string]fakeContainer // by full id
	info       map[string]any
	// answerAs makes inspect of one id answer with another (docker
	// resolves names and prefixes).
	answerAs map[string]string

	mu      sync.Mutex
	deleted []string
}

type fakeContainer struct {
	user, usernsMode string
}

var apiPath = regexp.MustCompile(`^(/v[0-9.]+)?(/.*)$`)

func (f *fakeDocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.43")
	p := apiPath.FindStringSubmatch(r.URL.Path)[2]
	switch {
	case p == "/_ping":
		w.Write([]byte("OK"))
	case p == "/info":
		json.NewEncoder(w).Encode(f.info)
	case p == "/containers/json":
		var list []map[string]any
		for id := range f.containers {
			list = append(list, map[string]any{"Id": id, "Names": []string{"/c-" + id[:6]}, "State": "exited"})
		}
		json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json")
		if other, ok := f.answerAs[id]; ok {
			id = other
		}
		c, ok := f.containers[id]
		if !ok {
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"Id": id, "Name": "/c-" + id[:6],
			"State":      map[string]any{"Status": "exited"},
			"Config":     map[string]any{"User": c.user},
			"HostConfig": map[string]any{"UsernsMode": c.usernsMode},
		})
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/containers/"):
		f.mu.Lock()
		f.deleted = append(f.deleted, strings.TrimPrefix(p, "/containers/"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// serve listens on sock (a path in a temporary directory).
func (f *fakeDocker) serve(t *testing.T, sock string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(sock), 0o755)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
}

func cid(c byte) string { return strings.Repeat(string(c), 64) }

// keyringHost is a host tree whose /proc/keys lists one session keyring
// per entry of owners (container id -> owning uid), and whose docker
// daemon listens at <root>/run/docker.sock.
func keyringHost(t *testing.T, owners map[string]int) (*host.Host, string) {
	t.Helper()
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	os.MkdirAll(filepath.Join(proc, "sys", "kernel", "keys"), 0o755)
	var keys strings.Builder
	count := map[int]int{}
	serial := 0x10000000
	for id, uid := range owners {
		fmt.Fprintf(&keys, "%08x I--Q---     1 perm 3f010000 %5d %5d keyring   _ses.%s: empty\n", serial, uid, uid, id)
		serial++
		count[uid]++
	}
	var users strings.Builder
	for uid, n := range count {
		fmt.Fprintf(&users, "%5d:   %d %d/%d %d/200 %d/20000\n", uid, n, n, n, n, 100*n)
	}
	os.WriteFile(filepath.Join(proc, "keys"), []byte(keys.String()), 0o644)
	os.WriteFile(filepath.Join(proc, "key-users"), []byte(users.String()), 0o644)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	return host.New(proc, filepath.Join(dir, "sys"), root), root
}

// --prune on a host where one exited container's keyring is genuine (owned
// by root, as runc makes it for a container without a user namespace),
// and another's was made by an unprivileged uid to get it removed: the
// daemon under the host root receives a DELETE for the first only.
func TestPruneOnlyProvenOwners(t *testing.T) {
	genuine, forged, user, kernelSaysNo := cid('a'), cid('b'), cid('c'), cid('d')
	h, root := keyringHost(t, map[string]int{genuine: 0, forged: 261005, user: 261007, kernelSaysNo: 0})
	f := &fakeDocker{
		containers: map[string]fakeContainer{genuine: {}, forged: {}, user: {user: "261007:261007"}, kernelSaysNo: {}},
		info:       map[string]any{"SecurityOptions": []string{"name=seccomp,profile=builtin"}, "DockerRootDir": "/var/lib/docker"},
	}
	f.serve(t, filepath.Join(root, "run", "docker.sock"))
	copts := check.Options{Runtimes: &attrib.Options{DockerHost: "unix:///run/docker.sock", Timeout: 5 * time.Second}}
	o := Options{StateDir: filepath.Join(t.TempDir(), "state"), keyring: func(id string, uid int) error {
		// What the kernel says: the fourth keyring's /proc/keys line was
		// forged inside another key's description.
		if id == kernelSaysNo {
			return errors.New("the kernel has no such keyring")
		}
		return nil
	}}
	res, err := Cleanup(context.Background(), h, copts, Plan{Actions: []Action{{Kind: KindCleanup, Limit: "leak.keyrings"}}}, o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range res.Entries {
		got[e.Container] = e
	}
	if fmt.Sprint(slices.Sorted(slices.Values(f.deleted))) != fmt.Sprint([]string{genuine, user}) {
		t.Errorf("DELETEs %v, want %s and %s only; entries %+v", f.deleted, genuine[:6], user[:6], res.Entries)
	}
	if e := got[forged]; e.State != StateSkipped || !strings.Contains(e.Note, "uid 261005") {
		t.Errorf("forged keyring: %+v", e)
	}
	if e := got[kernelSaysNo]; e.State != StateSkipped || !strings.Contains(e.Note, "no such keyring") {
		t.Errorf("forged /proc/keys line: %+v", e)
	}
	if e := got[genuine]; e.State != StateRemoved {
		t.Errorf("genuine: %+v", e)
	}
	// The journal holds each decision, and passes its own checks.
	j, err := ReadJournal(journalPath(o))
	if err != nil || len(j.Entries) != 4 {
		t.Fatalf("journal: %v %+v", err, j)
	}
	o.defaults()
	for _, e := range j.Entries {
		if err := validEntry(e, o); err != nil {
			t.Errorf("journal entry %+v: %v", e, err)
		}
	}
}

// With userns-remap, container root is the remap range's first uid: a
// keyring of host root, or of a uid off the container's map, is not the
// container's.
func TestPruneUsernsRemap(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "subuid"), []byte("alice:100000:65536\ndockremap:231072:65536\n"), 0o644)
	h := host.New(filepath.Join(root, "proc"), filepath.Join(root, "sys"), root)
	u := attrib.DockerUserns{Remap: true, RootUID: 231072}
	for _, tc := range []struct {
		user       string
		hostUserns bool
		uid        int
		ok         bool
	}{
		{"", false, 231072, true},
		{"", false, 0, false},           // host root's keyring, a remapped container
		{"1000", false, 232072, true},   // the container's user, mapped
		{"1000", false, 1000, false},    // the unmapped uid: anyone's
		{"70000", false, 301072, false}, // off the map
		{"app", false, 231072, true},    // a name: root still proves it
		{"app", false, 232072, false},
		{"", true, 0, true}, // --userns=host
		{"", true, 231072, false},
	} {
		why := keyringOwner(h, u, attrib.DockerContainer{User: tc.user, HostUserns: tc.hostUserns}, tc.uid)
		if (why == "") != tc.ok {
			t.Errorf("user %q host userns %v, keyring uid %d: %q, want proven %v", tc.user, tc.hostUserns, tc.uid, why, tc.ok)
		}
	}
	if why := keyringOwner(h, attrib.DockerUserns{Rootless: true}, attrib.DockerContainer{}, 0); why == "" {
		t.Error("a rootless daemon's container proven")
	}
}

// The daemon is asked at the socket under the host root, whatever answers
// at the unrooted path; an inspect that resolves to another container (a
// prefix or a name) removes nothing.
func TestPruneAsksTheRootedDaemon(t *testing.T) {
	id, other := cid('e'), cid('f')
	root := t.TempDir()
	f := &fakeDocker{containers: map[string]fakeContainer{other: {}}, answerAs: map[string]string{id: other},
		info: map[string]any{"DockerRootDir": "/var/lib/docker"}}
	f.serve(t, filepath.Join(root, "run", "docker.sock"))
	d, err := attrib.DialDocker(attrib.Options{DockerHost: "unix:///run/docker.sock", SocketPath: func(p string) string { return filepath.Join(root, p) }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	uid := 0
	var got []Entry
	h := host.New(filepath.Join(root, "proc"), filepath.Join(root, "sys"), root)
	pruneContainers(context.Background(), h, d, 5*time.Second,
		[]limits.Consumer{{Container: id, Runtime: "docker", State: "exited", UID: &uid}},
		func(string, int) error { return nil }, func(e Entry) { got = append(got, e) })
	if len(f.deleted) != 0 || len(got) != 1 || got[0].State != StateSkipped {
		t.Errorf("deleted %v; entries %+v", f.deleted, got)
	}
	if _, err := attrib.DialDocker(attrib.Options{DockerHost: "tcp://10.0.0.1:2375"}); err == nil {
		t.Error("pruning through a remote daemon")
	}
}
