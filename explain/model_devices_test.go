package explain

import "testing"

// The devices family's real messages (limits/devices_msgs_test.go) put
// their limit first.
func TestDevicesRule(t *testing.T) {
	tests := []struct{ msg, want string }{
		{`OCI runtime exec failed: exec failed: unable to start container process: open /dev/ptmx: no space left on device: uknown`, "ptys"},
		{`Failed to open PTY: No space left on device`, "ptys"},
		{`script: failed to create pseudo-terminal: No space left on device`, "ptys"},
		{`OSError: out of pty devices`, "ptys"},
		{`open /tmp/enospc-lab-devpts-1234/ptmx: no space left on device`, "ptys"},
		{`2020-11-13T10:18:19.268203Z 1 [ERROR] [MY-012584] [InnoDB] io_setup() failed with EAGAIN after 5 attempts.`, "aio"},
		{`2020-11-13T10:18:19.268818Z 1 [ERROR] [MY-012954] [InnoDB] Cannot initialize AIOsub-system`, "aio"},
		{`fio: pid=97220, err=11/file:engines/libaio.c:353, func=io_queue_init, error=Resource temporarily unavailable`, "aio"},
		{`io_setup(81920, 0x7fff13155df0)         = -1 EAGAIN (Resource temporarily unavailable)`, "aio"},
		{"runtime: epollctl failed with 28\nfatal error: runtime: epollctl failed", "epoll"},
		{`epoll_ctl: no space left on device`, "epoll"},
		{`ERRO[0345] error monitoring runtime instance: fanotify: init error, too many open files`, "fanotify.groups"},
		{`fanotify_init: too many open files`, "fanotify.groups"},
		{`fanotify_mark /tmp/enospc-lab-fanotify-1234/f00000: no space left on device`, "fanotify.marks"},
	}
	for _, tt := range tests {
		cands := Candidates(Normalize(tt.msg))
		if len(cands) == 0 || cands[0].Limit != tt.want {
			t.Errorf("%q: candidates %+v, want %s first", tt.msg, cands, tt.want)
			continue
		}
		if cands[0].Confidence < 0.8 {
			t.Errorf("%q: %s at %.2f, want at least 0.8", tt.msg, tt.want, cands[0].Confidence)
		}
	}
	// Not theirs: an inotify watch limit and a full disk.
	for _, msg := range []string{
		`inotify_add_watch /sys/fs/cgroup/memory/kubepods: no space left on device`,
		`dd: error writing '/tmp/mtest/x': No space left on device`,
		`/bin/bash: fork: retry: Resource temporarily unavailable`,
	} {
		for _, c := range Candidates(Normalize(msg)) {
			switch c.Limit {
			case "ptys", "aio", "epoll", "fanotify.groups", "fanotify.marks":
				t.Errorf("%q names %s (%.2f)", msg, c.Limit, c.Confidence)
			}
		}
	}
}
