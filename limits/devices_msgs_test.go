package limits

// Real messages of the devices family (devices.go): from public reports
// (URL beside each) and from the lab (lab/kernel/devices_test.go) on this
// kernel (6.18, runc 1.1.5, util-linux 2.38.1, Python 3.11, Go 1.26).
func init() {
	realMessages["ptys"] = []string{
		// https://github.com/Womabre/unraid-docker-templates/issues/14
		`OCI runtime exec failed: exec failed: unable to start container process: open /dev/ptmx: no space left on device: uknown`,
		// https://unix.stackexchange.com/questions/704181/no-space-left-on-the-device-but-its-not
		`Failed to open PTY: No space left on device`,
		// https://github.com/lxc/lxc/issues/2746
		`There was an error creating the child process for this terminal Failed to open PTY: No space left on device`,
		// The lab: runc exec -t into a container whose /dev/pts is full.
		`exec failed: unable to start container process: open /dev/ptmx: no space left on device`,
		// The lab: script(1) and Python's pty module, as a pty-less uid.
		`script: failed to create pseudo-terminal: No space left on device`,
		`OSError: out of pty devices`,
		// The lab: the syscall.
		`open /tmp/enospc-lab-devpts-1234/ptmx: no space left on device`,
	}
	realMessages["aio"] = []string{
		// https://github.com/docker-library/mysql/issues/727
		`2020-11-13T10:18:19.268203Z 1 [ERROR] [MY-012584] [InnoDB] io_setup() failed with EAGAIN after 5 attempts.`,
		`2020-11-13T10:18:19.268818Z 1 [ERROR] [MY-012954] [InnoDB] Cannot initialize AIOsub-system`,
		// https://github.com/axboe/fio/issues/539
		`fio: pid=97220, err=11/file:engines/libaio.c:353, func=io_queue_init, error=Resource temporarily unavailable`,
		// https://github.com/scylladb/scylladb/issues/922 (strace)
		`io_setup(81920, 0x7fff13155df0)         = -1 EAGAIN (Resource temporarily unavailable)`,
	}
	realMessages["epoll"] = []string{
		// The lab: a Go program started as a uid whose epoll watches are
		// all taken dies in its runtime's netpoll setup.
		"runtime: epollctl failed with 28\nfatal error: runtime: epollctl failed",
		// The lab: the syscall.
		`epoll_ctl: no space left on device`,
	}
	realMessages["fanotify.groups"] = []string{
		// https://github.com/inspektor-gadget/inspektor-gadget/issues/2967
		`ERRO[0345] error monitoring runtime instance: fanotify: init error, too many open files`,
		// The lab: the syscall.
		`fanotify_init: too many open files`,
	}
	realMessages["fanotify.marks"] = []string{
		// The lab: the syscall.
		`fanotify_mark /tmp/enospc-lab-fanotify-1234/f00000: no space left on device`,
	}

	foreignMessages["ptys"] = []string{realMessages["disk"][0], realMessages["inotify.watches"][0], realMessages["inodes"][0]}
	foreignMessages["aio"] = []string{realMessages["pids"][0], realMessages["threads"][0]}
	foreignMessages["epoll"] = []string{realMessages["inotify.watches"][0], realMessages["inotify.watches"][1], realMessages["disk"][0]}
	foreignMessages["fanotify.groups"] = []string{realMessages["inotify.instances"][0], realMessages["inotify.instances"][1], realMessages["files"][1]}
	foreignMessages["fanotify.marks"] = []string{realMessages["inotify.watches"][0], realMessages["disk"][0]}
}
