//go:build lab

package kernel

// inotify instances and watches, charged per uid (fs.inotify.max_user_instances,
// fs.inotify.max_user_watches). Two helper processes under two dedicated
// uids: the first takes instances until inotify_init1 fails with EMFILE; the
// second takes fewer instances than the limit and adds watches on the files
// of a private tmpfs until inotify_add_watch fails with ENOSPC. Separate uids
// keep the two per-user counters apart, so each row is exhausted by exactly
// one known holder.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// helperInotifyInstances creates inotify instances until the kernel refuses.
func helperInotifyInstances() helperReport {
	bound := helperEnvInt("ENOSPC_LAB_BOUND", 20000)
	var rep helperReport
	for i := 0; i < bound; i++ {
		if _, err := syscall.InotifyInit1(syscall.IN_CLOEXEC); err != nil {
			rep.Err = "inotify_init1: " + err.Error()
			rep.Errno = int(errnoOf(err))
			break
		}
		rep.Count++
	}
	rep.Instances = rep.Count
	if rep.Err == "" {
		rep.Fatal = fmt.Sprintf("inotify_init1 did not fail in %d calls", bound)
	}
	return rep
}

// helperInotifyWatches creates ENOSPC_LAB_INSTANCES instances and adds
// watches on the ENOSPC_LAB_FILES files f00000... of ENOSPC_LAB_DIR, each
// instance watching every file, until the kernel refuses.
func helperInotifyWatches() helperReport {
	dir := os.Getenv("ENOSPC_LAB_DIR")
	nfiles := helperEnvInt("ENOSPC_LAB_FILES", 0)
	ninst := helperEnvInt("ENOSPC_LAB_INSTANCES", 0)
	var rep helperReport
	if dir == "" || nfiles <= 0 || ninst <= 0 {
		rep.Fatal = "ENOSPC_LAB_DIR, ENOSPC_LAB_FILES and ENOSPC_LAB_INSTANCES are required"
		return rep
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < ninst && rep.Err == ""; i++ {
		fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
		if err != nil {
			rep.Fatal = fmt.Sprintf("inotify_init1 (instance %d): %v", i+1, err)
			return rep
		}
		rep.Instances++
		for j := 0; j < nfiles; j++ {
			p := filepath.Join(dir, fmt.Sprintf("f%05d", j))
			if _, err := syscall.InotifyAddWatch(fd, p, syscall.IN_MODIFY); err != nil {
				rep.Err = "inotify_add_watch " + p + ": " + err.Error()
				rep.Errno = int(errnoOf(err))
				break
			}
			rep.Count++
		}
		if time.Now().After(deadline) {
			rep.Fatal = fmt.Sprintf("gave up after 60s with %d watches", rep.Count)
			return rep
		}
	}
	if rep.Err == "" {
		rep.Fatal = fmt.Sprintf("inotify_add_watch did not fail in %d watches over %d instances", rep.Count, ninst)
	}
	return rep
}

func TestInotifyInstances(t *testing.T) {
	// A host with a huge instance limit would make the helper hold that many
	// fds; lower it for the test (restored at cleanup) rather than skip.
	maxInst := lowerSysctl(t, "fs.inotify.max_user_instances", 16384, 1024)
	uid := labkit.UID(1)
	bin := helperBinary(t)

	h := startHelper(t, bin, "inotify-instances", uid)
	t.Logf("uid %d pid %d: %d inotify instances, then: %s (%s)", uid, h.PID(), h.Report.Count, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.EMFILE {
		t.Fatalf("inotify_init1 failed with %s, want EMFILE: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if int64(h.Report.Count) != maxInst {
		t.Errorf("the helper got %d instances before EMFILE, want max_user_instances = %d (is uid %d really unused?)", h.Report.Count, maxInst, uid)
	}

	// What a real program prints when it needs one more instance as that uid.
	watched := filepath.Join(filepath.Dir(bin), "followed")
	if err := os.WriteFile(watched, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tail := runAs(t, uid, 10*time.Second, "polling", "tail", "-f", watched)
	t.Logf("tail -f as uid %d printed: %q", uid, strings.TrimSpace(tail))
	if !strings.Contains(tail, "Too many open files") {
		t.Errorf("tail -f as uid %d did not report EMFILE from inotify_init: %q", uid, tail)
	}

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "inotify.instances", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical {
		t.Errorf("inotify.instances uid %d is %s, want critical", uid, u.Severity)
	}
	if u.Used != int64(h.Report.Count) || u.Max != maxInst {
		t.Errorf("inotify.instances uid %d: used %d max %d, want %d of %d", uid, u.Used, u.Max, h.Report.Count, maxInst)
	}
	if !hasConsumer(u, h.PID(), helperName) {
		t.Errorf("inotify.instances uid %d does not list the helper (pid %d, comm %s): %+v", uid, h.PID(), helperName, u.Consumers)
	} else if c := u.Consumers[0]; c.PID != h.PID() || c.Count != int64(h.Report.Count) || c.UID == nil || *c.UID != uid {
		t.Errorf("top consumer is %+v, want pid %d uid %d holding %d", c, h.PID(), uid, h.Report.Count)
	}
	// The same uid holds no watches: that row exists and is ok.
	w := labkit.Find(t, rep, "inotify.watches", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	if w.Severity != limits.OK || w.Used != 0 {
		t.Errorf("inotify.watches uid %d: %s %d/%d, want ok 0", uid, w.Severity, w.Used, w.Max)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
}

func TestInotifyWatches(t *testing.T) {
	// Reaching a limit of millions would take that many watches (and
	// kernel memory); lower it for the test, restored at cleanup.
	maxWatches := lowerSysctl(t, "fs.inotify.max_user_watches", 2_000_000, 200_000)
	maxInst := readInt(t, sysctlPath("fs.inotify.max_user_instances"))
	uid := labkit.UID(2)

	// Watches are per (instance, inode): spread them over ninst instances,
	// each watching every file, so that nfiles stays small.
	ninst := int64(100)
	if ninst > maxInst*3/4 {
		ninst = maxInst * 3 / 4 // keep the instances row below its warning threshold
	}
	if ninst < 1 {
		t.Fatalf("LAB CANNOT RUN: fs.inotify.max_user_instances is %d", maxInst)
	}
	nfiles := maxWatches/ninst + 100
	if nfiles > 200_000 {
		t.Fatalf("LAB CANNOT RUN: %d watches over %d instances needs %d files", maxWatches, ninst, nfiles)
	}
	dir := labkit.MountTmpfs(t, "enospc-lab-watches", fmt.Sprintf("size=16m,nr_inodes=%d,mode=0755", nfiles+100))
	for j := int64(0); j < nfiles; j++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%05d", j)), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("create watched file %d: %v", j, err)
		}
		f.Close()
	}

	bin := helperBinary(t)
	h := startHelper(t, bin, "inotify-watches", uid,
		"ENOSPC_LAB_DIR="+dir, "ENOSPC_LAB_FILES="+strconv.FormatInt(nfiles, 10), "ENOSPC_LAB_INSTANCES="+strconv.FormatInt(ninst, 10))
	t.Logf("uid %d pid %d: %d watches over %d instances, then: %s (%s)", uid, h.PID(), h.Report.Count, h.Report.Instances, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.ENOSPC {
		t.Fatalf("inotify_add_watch failed with %s, want ENOSPC: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if int64(h.Report.Count) != maxWatches {
		t.Errorf("the helper got %d watches before ENOSPC, want max_user_watches = %d (is uid %d really unused?)", h.Report.Count, maxWatches, uid)
	}

	// What a real program prints when it needs one more watch as that uid.
	tail := runAs(t, uid, 10*time.Second, "polling", "tail", "-f", filepath.Join(dir, "f00000"))
	t.Logf("tail -f as uid %d printed: %q", uid, strings.TrimSpace(tail))
	if !strings.Contains(tail, "inotify resources exhausted") {
		t.Errorf("tail -f as uid %d did not report exhausted inotify watches: %q", uid, tail)
	}

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "inotify.watches", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical {
		t.Errorf("inotify.watches uid %d is %s, want critical", uid, u.Severity)
	}
	if u.Used != int64(h.Report.Count) || u.Max != maxWatches {
		t.Errorf("inotify.watches uid %d: used %d max %d, want %d of %d", uid, u.Used, u.Max, h.Report.Count, maxWatches)
	}
	if !hasConsumer(u, h.PID(), helperName) {
		t.Errorf("inotify.watches uid %d does not list the helper (pid %d, comm %s): %+v", uid, h.PID(), helperName, u.Consumers)
	} else if c := u.Consumers[0]; c.PID != h.PID() || c.Count != int64(h.Report.Count) {
		t.Errorf("top consumer is %+v, want pid %d holding %d", c, h.PID(), h.Report.Count)
	}
	in := labkit.Find(t, rep, "inotify.instances", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	if in.Used != int64(h.Report.Instances) || in.Severity != limits.OK {
		t.Errorf("inotify.instances uid %d: %s %d/%d, want ok %d", uid, in.Severity, in.Used, in.Max, h.Report.Instances)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
}
