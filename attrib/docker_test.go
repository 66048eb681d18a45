package attrib

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DialDocker asks the daemon Collect listed: the socket DockerHost names,
// under SocketPath (a host root), never the path as given.
func TestDialDockerIsTheInventorysDaemon(t *testing.T) {
	root := t.TempDir()
	id := strings.Repeat("ab", 32)
	sock := filepath.Join(root, "run", "docker.sock")
	os.MkdirAll(filepath.Dir(sock), 0o755)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.43")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			json.NewEncoder(w).Encode([]map[string]any{{"Id": id, "State": "exited"}})
		case strings.HasSuffix(r.URL.Path, "/containers/"+id+"/json"):
			json.NewEncoder(w).Encode(map[string]any{"Id": id, "Name": "/x", "State": map[string]any{"Status": "exited"},
				"Config": map[string]any{"User": "1000"}, "HostConfig": map[string]any{"UsernsMode": "host"}})
		case strings.HasSuffix(r.URL.Path, "/info"):
			json.NewEncoder(w).Encode(map[string]any{"SecurityOptions": []string{"name=seccomp,profile=builtin", "name=userns"}, "DockerRootDir": "/var/lib/docker/231072.231072"})
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	opts := Options{DockerHost: "unix:///run/docker.sock", Timeout: 5 * time.Second, SocketPath: func(p string) string { return filepath.Join(root, p) }}
	if got, ok := DockerSocket(opts); !ok || got != sock {
		t.Fatalf("DockerSocket: %q %v, want %q", got, ok, sock)
	}
	inv := Collect(context.Background(), opts)
	if _, ok := inv.Lookup(id); !ok {
		t.Fatalf("Collect did not list the container: %+v", inv.Sources)
	}
	d, err := DialDocker(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := d.Inspect(context.Background(), id)
	if err != nil || c.ID != id || c.User != "1000" || !c.HostUserns || c.Live {
		t.Errorf("inspect: %+v %v", c, err)
	}
	u, err := d.Userns(context.Background())
	if err != nil || !u.Remap || u.RootUID != 231072 || u.Rootless {
		t.Errorf("userns: %+v %v", u, err)
	}
	for _, host := range []string{"tcp://127.0.0.1:2375", "ssh://h", ""} {
		if _, err := DialDocker(Options{DockerHost: host}); err == nil {
			t.Errorf("DialDocker %q: no error", host)
		}
	}
}
