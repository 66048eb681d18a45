package explain

import "strings"

// The devices family: ptys, AIO contexts, epoll watches, fanotify groups
// and marks (limits/devices.go).
func init() { registerRule(devicesRule) }

func devicesRule(t string, e errnos, s scorer) {
	// Pseudo-terminals: opening /dev/ptmx fails with ENOSPC at
	// kernel.pty.max (minus the reserve, in containers) or at a devpts
	// instance's max=.
	ptyCall := containsAny(t, "/dev/ptmx", "ptmx", "pseudo-terminal", "pseudo terminal", "pseudoterminal", "openpty", "forkpty",
		"posix_openpt", "getpt", "open pty", "create pty", "allocate pty", "kernel.pty", "pty/max", "devpts")
	switch {
	case ptyCall && e.nospc:
		s.add("ptys", 0.92, "opening /dev/ptmx fails with ENOSPC when kernel.pty.max (less kernel.pty.reserve in containers) or the devpts instance's max= is reached")
	case containsAny(t, "out of pty devices", "out of pty's", "out of ptys", "no more ptys"):
		s.add("ptys", 0.88, "the program ran out of pseudo-terminals: kernel.pty.max or a devpts max=")
	case strings.Contains(t, "refused to allocate pty"):
		s.add("ptys", 0.7, "sshd could not allocate a pty: often kernel.pty.max, though a permission problem reads the same")
	case e.nospc && containsAny(t, "console", " tty", "terminal"):
		s.add("ptys", 0.5, "a terminal or console could not be set up with ENOSPC: the pty limits")
	}

	// AIO: io_setup reserves events host-wide against fs.aio-max-nr and
	// fails with EAGAIN.
	aioCall := containsAny(t, "io_setup", "io_queue_init", "aio-max-nr", "aio-nr", "aio context", "native aio", "linux aio", "linux-aio",
		"libaio", "aiosub-system", "aio sub-system", "aio subsystem")
	switch {
	case aioCall && (e.again || containsAny(t, "aio-max-nr", "aio-nr")):
		s.add("aio", 0.92, "io_setup fails with EAGAIN when the host's fs.aio-nr plus the events asked for passes fs.aio-max-nr")
	case containsAny(t, "cannot initialize aiosub-system", "cannot initialize aio sub-system", "cannot initialise aio"):
		s.add("aio", 0.85, "InnoDB could not set up native AIO: io_setup was refused, as at fs.aio-max-nr")
	case aioCall:
		s.add("aio", 0.6, "an AIO setup failed: fs.aio-max-nr is the usual limit")
	}

	// epoll: epoll_ctl ADD fails with ENOSPC at the real uid's
	// fs.epoll.max_user_watches.
	epollCall := containsAny(t, "epoll_ctl", "epollctl", "epoll.max_user_watches", "epoll/max_user_watches")
	switch {
	case epollCall && (e.nospc || containsAny(t, "failed with 28", "(28:", "errno 28", "max_user_watches")):
		s.add("epoll", 0.93, "epoll_ctl fails with ENOSPC when the uid's registrations reach fs.epoll.max_user_watches")
	case strings.Contains(t, "epoll") && e.nospc:
		s.add("epoll", 0.85, "epoll with \"no space left on device\": fs.epoll.max_user_watches")
	}

	// fanotify: fanotify_init fails with EMFILE at max_user_groups,
	// fanotify_mark with ENOSPC at max_user_marks.
	if strings.Contains(t, "fanotify") {
		groups := e.mfile || containsAny(t, "fanotify_init", "init error", "max_user_groups", "max_fanotify_groups")
		marks := e.nospc || containsAny(t, "fanotify_mark", "max_user_marks", "max_fanotify_marks")
		switch {
		case groups && !marks:
			s.add("fanotify.groups", 0.92, "fanotify_init fails with EMFILE when the uid's fs.fanotify.max_user_groups is reached")
		case marks && !groups:
			s.add("fanotify.marks", 0.92, "fanotify_mark fails with ENOSPC when the uid's fs.fanotify.max_user_marks is reached")
		case marks && groups:
			s.add("fanotify.groups", 0.8, "fanotify with EMFILE: the uid's max_user_groups")
			s.add("fanotify.marks", 0.8, "fanotify with ENOSPC: the uid's max_user_marks")
		}
	}
}
