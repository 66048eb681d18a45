package limits

// Real messages of the ipc family: captured by the lab
// (lab/kernel/ipc_test.go, kernel 6.18, a private IPC namespace with
// lowered limits: ipcmk from util-linux 2.38.1, and the syscalls as a Go
// program prints them, os.NewSyscallError) or quoted from public reports,
// whose addresses are given.
func init() {
	realMessages["ipc.shm"] = []string{
		// The lab: ipcmk -M past kernel.shmmni, and shmget(2) itself.
		`ipcmk: create share memory failed: No space left on device`,
		`shmget: no space left on device`,
		// PostgreSQL's initdb, https://github.com/digital-asset/daml/pull/5824
		`FATAL:  could not create shared memory segment: No space left on device
DETAIL:  Failed system call was shmget(key=5432001, size=56, 03600).
HINT:  This error does *not* mean that you have run out of disk space.
It occurs either if all available shared memory IDs have been taken, in
which case you need to raise the SHMMNI parameter in your kernel, or
because the system's overall limit for shared memory has been reached.`,
		// https://github.com/Homebrew/homebrew-core/pull/42559
		`2019-07-29 13:21:35.112 BST [6693] FATAL:  could not create shared memory segment: No space left on device`,
	}
	realMessages["ipc.sem"] = []string{
		// The lab: ipcmk -S past SEMMNI, and semget(2) itself.
		`ipcmk: create semaphore failed: No space left on device`,
		`semget: no space left on device`,
		// https://github.com/PostgresApp/PostgresApp/issues/583
		`2020-08-06 09:40:47.034 CST [28825] FATAL:  could not create semaphores: No space left on device`,
		`2020-08-06 09:40:47.034 CST [28825] HINT:  This error does *not* mean that you have run out of disk space.  It occurs when either the system limit for the maximum number of semaphore sets (SEMMNI), or the system wide maximum number of semaphores (SEMMNS), would be exceeded.`,
		// PHP sysvsem, https://github.com/misterion/ko-process/issues/24
		`Warning: sem_get(): failed for key 0x61003ddc: No space left on device in /var/www/html/queue/vendor/misterion/ko-process/src/Ko/Semaphore.php on line 79`,
		// Leaked device-mapper udev cookies, https://github.com/moby/moby/issues/33603
		`Limit for the maximum number of semaphores reached. You can check and set the limits in /proc/sys/kernel/sem.`,
		`level=fatal msg="Error starting daemon: error initializing graphdriver: devmapper: Base Device UUID and Filesystem verification failed: devicemapper: Can't set cookie dm_task_set_cookie failed"`,
		// Apache's leftover semaphores,
		// https://nacko.net/apache-error-no-space-left-on-device-couldnt-create-accept-lock/
		`[Tue Jan 17 10:40:47 2017] [emerg] (28)No space left on device: Couldn't create accept lock (/etc/httpd/logs/accept.lock.13808) (5)`,
	}
	realMessages["ipc.msg"] = []string{
		// The lab: ipcmk -Q past kernel.msgmni, and msgget(2) itself.
		`ipcmk: create message queue failed: No space left on device`,
		`msgget: no space left on device`,
		// https://github.com/swoole/swoole-src/issues/4795
		`[2022-08-08 00:00:00 @1578.0]   WARNING MsgQueue::MsgQueue(): msgget() failed, Error: No space left on device[28]`,
		// PHP sysvmsg, https://github.com/amphp/sync/issues/28
		`msg_get_queue(): Failed for key 0x00000000: No space left on device`,
	}
	realMessages["mqueue"] = []string{
		// The lab: mq_open(3) past fs.mqueue.queues_max.
		`mq_open: no space left on device`,
		// https://github.com/avatartwo/avatar2/pull/85
		`qemu: qemu_avatar_mq_open_read: No space left on device`,
	}
	foreignMessages["ipc.shm"] = []string{
		realMessages["disk"][0],
		// POSIX shared memory is a file of /dev/shm: a full tmpfs.
		`ERROR:  could not resize shared memory segment "/PostgreSQL.1450751626" to 8388608 bytes: No space left on device`,
	}
	foreignMessages["ipc.sem"] = []string{
		realMessages["disk"][0],
		// POSIX named semaphores are files of /dev/shm too.
		`oauth2_ipc_sema_post_config: sem_open() failed to create named semaphore /zzo-sema-8085.0x564b89a996e0: No space left on device (28)`,
	}
	foreignMessages["ipc.msg"] = []string{realMessages["disk"][0], `mq_open: no space left on device`}
	foreignMessages["mqueue"] = []string{realMessages["disk"][0], `msgget: no space left on device`}
}
