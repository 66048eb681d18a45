package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve prints its address on a line that ends with it (deploy's test
// and scripts read it), answers /healthz as soon as it listens (a request
// waits for the first snapshot), hides holders by default, refuses the
// removed --cache and a zero --interval, and exits 0 when its context
// ends.
func TestServeCommand(t *testing.T) {
	hostDir := "../../testdata/hosts/jenkins-keyring"
	prepareFixture(t, hostDir)
	cfg := Config{HostHook: fixtureHost(t, hostDir), CheckHook: fixtureInventory(t, hostDir)}
	hostArgs := []string{"--proc", hostDir + "/proc", "--sys", hostDir + "/sys", "--root", hostDir + "/root"}

	for _, bad := range [][]string{{"--cache", "0"}, {"--cache", "5s"}, {"--interval", "0s"}, {"--max-connections", "0"}} {
		var stderr strings.Builder
		if code := RunWith(context.Background(), append(append([]string{"serve", "--listen", "127.0.0.1:0", "--history-dir", ""}, hostArgs...), bad...), io.Discard, &stderr, cfg); code != 3 {
			t.Errorf("serve %q exited %d, want 3", bad, code)
		}
		if bad[0] == "--cache" && !strings.Contains(stderr.String(), "--interval") {
			t.Errorf("serve --cache does not say what replaced it: %q", stderr.String())
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- RunWith(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--interval", "1h", "--history-dir", t.TempDir()}, hostArgs...), io.Discard, pw, cfg)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var addr string
	for sc.Scan() {
		if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
			addr = a
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Fatalf("no address on the listening line: %q", addr)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz right after listening: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `enospc_limit_severity{limit="keys.bytes",scope="uid 1001"} 3`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, body := get("/api/v1/check"); code != 200 || strings.Contains(body, `"comm"`) || strings.Contains(body, `"pid"`) {
		t.Errorf("/api/v1/check: %d, holders not hidden:\n%.2000s", code, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after its context ended", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s of its context's end")
	}
}
