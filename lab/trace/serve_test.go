//go:build lab

package trace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/trace"
)

// serve --trace: a tmpfs out of inodes shows up in /api/v1/failures,
// named, and in enospc_syscall_failures_total.
func TestServeTrace(t *testing.T) {
	dir, source := mountTmpfs(t, "size=4m,nr_inodes=16")
	cmd := exec.Command(labkit.Bin(), "serve", "--trace", "--no-runtimes", "--listen", "127.0.0.1:0", "--interval", "5s", "--history-dir", "")
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var base string
	attached := false
	addr := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.After(20 * time.Second)
	for base == "" || !attached {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("enospc serve --trace exited")
			}
			t.Logf("serve: %s", l)
			if m := addr.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
			attached = attached || strings.Contains(l, "tracing failing syscalls at")
		case <-deadline:
			t.Fatalf("serve --trace did not listen and attach in 20s")
		}
	}
	sh := exec.Command("/bin/sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt 30 ]; do echo > %s/f$i 2>/dev/null; i=$((i+1)); done; sleep 8`, dir))
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer sh.Wait()
	var found *trace.Failure
	for end := time.Now().Add(20 * time.Second); found == nil && time.Now().Before(end); time.Sleep(time.Second) {
		var got struct {
			Failures []trace.Failure `json:"failures"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, base+"/api/v1/failures")), &got); err != nil {
			t.Fatal(err)
		}
		for i, f := range got.Failures {
			if f.Limit == "inodes" && f.Errno == "ENOSPC" && strings.HasPrefix(f.Scope, dir+" ") {
				found = &got.Failures[i]
			}
		}
	}
	if found == nil {
		t.Fatalf("no inodes failure of %s in /api/v1/failures after 20s", dir)
	}
	if found.PID != 0 || found.Comm != "" {
		t.Errorf("/api/v1/failures shows the holder without --expose-holders: pid %d comm %q", found.PID, found.Comm)
	}
	metrics := httpGet(t, base+"/metrics")
	want := fmt.Sprintf(`enospc_syscall_failures_total{errno="ENOSPC",limit="inodes",scope="%s (tmpfs %s)",syscall="openat"}`, dir, source)
	if !strings.Contains(metrics, want) || !strings.Contains(metrics, "\nenospc_trace_running 1\n") {
		t.Errorf("/metrics lacks %s or enospc_trace_running 1:\n%s", want, grepLines(metrics, "enospc_syscall_failures_total", "enospc_trace"))
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
