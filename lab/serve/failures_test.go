//go:build lab

package servelab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
)

// pageComm is the name the failing process gives itself: markup, at most
// the 15 bytes of a comm. The page must show it as text.
const pageComm = `<img src=x>`

// serve --trace --expose-holders: a shell of a dedicated uid that calls
// itself pageComm keeps failing to create a file on a private tmpfs out of
// inodes; Chromium loads the page, whose "Failures caught" section must
// show that failure (limit inodes, the tmpfs, openat ENOSPC) with the comm
// as text and no element made of it.
func TestServePageFailures(t *testing.T) {
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Fatalf("LAB CANNOT RUN: %s is missing: install chromium (scripts/test does)", chromiumBin)
	}
	const source = "enospc-lab-pagefail"
	uid := labkit.UID(7)
	dir := labkit.MountTmpfs(t, source, "size=4m,nr_inodes=16,mode=0755")
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	scope := fmt.Sprintf("%s (tmpfs %s)", dir, source)

	serveAddr := labkit.FreeAddr(t)
	serveURL := "http://" + serveAddr
	startProcess(t, "enospc serve --trace", labkit.Bin(), "serve", "--trace", "--expose-holders", "--listen", serveAddr, "--interval", "1s", "--no-runtimes", "--history-dir", "")
	waitFor(t, "enospc serve --trace attached (enospc_trace_running 1)", 30*time.Second, func() (bool, string) {
		b, err := get(serveURL + "/metrics")
		return err == nil && strings.Contains(string(b), "\nenospc_trace_running 1\n"), fmt.Sprintf("%v", err)
	})

	// The shell renames itself, fills the tmpfs, then fails to create a
	// file every 0.5 s (the redirections are the shell's own openat), so
	// that a fresh line of it comes with every drain of the trace and
	// stays among the newest whatever else fails on the host (true, not
	// the special builtin ":", whose failed redirection would end the
	// shell). Its uid is dedicated; root's credentials never run it.
	sh := exec.Command("/bin/sh", "-c", fmt.Sprintf(`printf %%s '%s' > /proc/$$/comm || exit 1
i=0; while [ $i -lt 40 ]; do true 2>/dev/null > %s/f$i; i=$((i+1)); done
while :; do true 2>/dev/null > %s/again; sleep 0.5; done`, pageComm, dir, dir))
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-sh.Process.Pid, syscall.SIGKILL); sh.Wait() })
	t.Logf("uid %d shell (pid %d) fails on %s", uid, sh.Process.Pid, scope)

	waitFor(t, "/api/v1/failures to have the shell's failure", 30*time.Second, func() (bool, string) {
		var got struct {
			Failures []struct{ Limit, Scope, Syscall, Errno, Comm string } `json:"failures"`
		}
		b, err := get(serveURL + "/api/v1/failures")
		if err == nil {
			err = json.Unmarshal(b, &got)
		}
		if err != nil {
			return false, err.Error()
		}
		for i, f := range got.Failures {
			if f.Limit == "inodes" && f.Scope == scope && f.Comm == pageComm {
				return i < 10, fmt.Sprintf("line %d of %d", i+1, len(got.Failures))
			}
		}
		return false, fmt.Sprintf("not among %d lines", len(got.Failures))
	})

	if err := syscall.Kill(sh.Process.Pid, 0); err != nil {
		t.Fatalf("the failing shell has ended (%v): it was to keep failing", err)
	}
	dom := chromium(t, "--virtual-time-budget=5000", "--dump-dom", serveURL+"/")
	sec := regexp.MustCompile(`(?s)<section id="failures"[^>]*>.*?</section>`).FindString(dom)
	if sec == "" || !strings.Contains(sec, `data-loaded="true"`) || !strings.Contains(sec, `data-trace="on"`) {
		t.Fatalf("the page has no loaded failures section with the trace on; DOM:\n%s", dom)
	}
	var mine []map[string]string
	for _, tag := range rowRe.FindAllString(sec, -1) {
		attrs := map[string]string{}
		for _, m := range attrRe.FindAllStringSubmatch(tag, -1) {
			attrs[m[1]] = m[2]
		}
		if attrs["class"] == "failure" && attrs["data-limit"] == "inodes" && strings.HasPrefix(attrs["data-scope"], dir+" ") {
			mine = append(mine, attrs)
		}
	}
	rows := strings.Count(sec, `<tr class="failure"`)
	t.Logf("the section shows %d failures, %d of them the tmpfs's", rows, len(mine))
	if len(mine) == 0 {
		t.Fatalf("no failure row of inodes on %s in the section:\n%s", dir, sec)
	}
	if mine[0]["data-syscall"] != "openat" || mine[0]["data-errno"] != "ENOSPC" {
		t.Errorf("the tmpfs's failure shows %s %s, want openat ENOSPC", mine[0]["data-syscall"], mine[0]["data-errno"])
	}
	if rows > 50 {
		t.Errorf("the section shows %d failures, more than 50", rows)
	}
	if !strings.Contains(sec, "&lt;img src=x&gt;[") {
		t.Errorf("the comm %q is not shown as text in the section:\n%s", pageComm, sec)
	}
	if regexp.MustCompile(`(?i)<img\b`).MatchString(dom) {
		t.Errorf("the page has an <img> element: the comm %q was made markup:\n%s", pageComm, sec)
	}
}
