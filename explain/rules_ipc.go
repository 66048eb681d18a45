package explain

import "strings"

// The ipc family: System V shared memory, semaphores and message queues,
// and POSIX message queues, per IPC namespace (limits/ipc.go). Their
// creating calls report an exhausted limit as ENOSPC, which reads like a
// full disk; POSIX shared memory and named semaphores are files of the
// /dev/shm tmpfs instead, whose ENOSPC is a full tmpfs (disk).
func init() { registerRule(ipcRule) }

func ipcRule(t string, e errnos, s scorer) {
	// POSIX shm_open/sem_open live in /dev/shm: not these limits.
	posixShm := containsAny(t, "shm_open", "sem_open", "named semaphore", "/dev/shm", "resize shared memory", "segment \"/", "segment '/")

	// System V shared memory: shmget.
	switch {
	case posixShm:
	case containsAny(t, "shmget") && e.nospc:
		s.add("ipc.shm", 0.92, "shmget fails with ENOSPC when the IPC namespace has kernel.shmmni segments, or its segments' pages would pass kernel.shmall")
	case containsAny(t, "create shared memory segment", "create share memory", "create shared memory", "create a shared memory") && e.nospc:
		s.add("ipc.shm", 0.9, "creating a System V shared memory segment failed with ENOSPC: kernel.shmmni or kernel.shmall of the IPC namespace")
	case containsAny(t, "shmmni parameter", "raise shmmni", "kernel.shmmni", "kernel.shmall"):
		s.add("ipc.shm", 0.88, "the message names the shared memory limits SHMMNI/SHMALL")
	}

	// System V semaphores: semget, and the programs that leak sets.
	switch {
	case posixShm:
	case containsAny(t, "semget", "sem_get(") && e.nospc:
		s.add("ipc.sem", 0.92, "semget fails with ENOSPC when the IPC namespace has SEMMNI sets or SEMMNS semaphores (kernel.sem's 4th and 2nd fields)")
	case containsAny(t, "could not create semaphores", "create semaphore failed") && e.nospc:
		s.add("ipc.sem", 0.9, "creating System V semaphores failed with ENOSPC: SEMMNI or SEMMNS of kernel.sem")
	case containsAny(t, "maximum number of semaphores", "(semmni)", "semmns", "kernel.sem", "kernel/sem"):
		s.add("ipc.sem", 0.9, "the message names the semaphore limits (kernel.sem)")
	case containsAny(t, "dm_task_set_cookie", "set cookie", "udev cookie", "udevcomplete"):
		s.add("ipc.sem", 0.85, "device-mapper could not get a udev cookie, a semaphore set: leaked cookies fill SEMMNI (dmsetup udevcomplete_all)")
	case e.nospc && containsAny(t, "accept lock", "accept mutex", "ssl-cache mutex", "ssl mutex", "mutex") && containsAny(t, "couldn't create", "could not create", "failed to create", "unable to create", "ah00023"):
		s.add("ipc.sem", 0.85, "Apache's mutexes are System V semaphores by default on Linux; a killed Apache leaves its sets, and new ones fail with ENOSPC at SEMMNI")
	case e.nospc && containsAny(t, "semaphore"):
		s.add("ipc.sem", 0.75, "a semaphore could not be created with ENOSPC: System V semaphore limits (kernel.sem)")
	}

	// Message queues: System V msgget, POSIX mq_open.
	sysvMsg := containsAny(t, "msgget", "msg_get_queue", "msgmni", "create message queue failed")
	posixMQ := containsAny(t, "mq_open", "queues_max", "mqueue", "posix message queue", "posix queue")
	switch {
	case sysvMsg && (e.nospc || strings.Contains(t, "msgmni")):
		s.add("ipc.msg", 0.92, "msgget fails with ENOSPC when the IPC namespace has kernel.msgmni System V message queues")
	case posixMQ && (e.nospc || strings.Contains(t, "queues_max")):
		s.add("mqueue", 0.92, "mq_open fails with ENOSPC when the IPC namespace has fs.mqueue.queues_max POSIX message queues (a process without CAP_SYS_RESOURCE)")
	case e.nospc && containsAny(t, "message queue", "msgqueue", "msg queue"):
		s.add("mqueue", 0.6, "a message queue could not be created with ENOSPC: POSIX queues stop at fs.mqueue.queues_max")
		s.add("ipc.msg", 0.55, "or System V queues at kernel.msgmni")
	}
}
