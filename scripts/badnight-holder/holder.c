/*
 * badnight-holder: the processes that hold keys and inotify watches on
 * scripts/badnight's host. It is C, built static by the script, because the
 * bad night has 5,000 of them: each is one thread of about 100 KiB, where a
 * Go helper would bring its runtime's threads and megabytes to every one.
 *
 *   badnight-holder keys UID NKEYS
 *       one process, running as UID, that joins a session keyring of its
 *       own and adds NKEYS small "user" keys to it (add_key(2)), all
 *       charged to UID's key quota (/proc/key-users);
 *   badnight-holder inotify UID NPROC NWATCH DIR
 *       NPROC processes, each running as UID with one inotify instance
 *       watching DIR/0 .. DIR/NWATCH-1 (directories that must exist).
 *
 * The holders pause until killed; killing them gives everything back (the
 * session keyring, and with it its keys, goes when its last holder does).
 * The command itself exits once every holder it started is holding, 0 when
 * all of them are, 1 when one failed; the holders stay, reparented, in the
 * caller's cgroup, which is how the script finds them again to kill them.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

static int ready_fd = -1;

/* become: drop root for uid (and gid uid, no supplementary groups). */
static int become(int uid) {
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) {
		perror("badnight-holder: drop to uid");
		return -1;
	}
	return 0;
}

static int hold_keys(int uid, int nkeys) {
	char name[64];
	if (become(uid))
		return -1;
	snprintf(name, sizeof name, "enospc-badnight-%d", (int)getpid());
	long ring = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name);
	if (ring < 0) {
		perror("badnight-holder: join session keyring");
		return -1;
	}
	for (int i = 0; i < nkeys; i++) {
		char desc[32];
		snprintf(desc, sizeof desc, "k%d", i);
		if (syscall(SYS_add_key, "user", desc, "1", 1, (int)ring) < 0) {
			fprintf(stderr, "badnight-holder: uid %d: add_key %d: ", uid, i);
			perror("");
			return -1;
		}
	}
	return 0;
}

static int hold_inotify(int uid, int nwatch, const char *dir) {
	if (become(uid))
		return -1;
	int fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "badnight-holder: uid %d: ", uid);
		perror("inotify_init1");
		return -1;
	}
	for (int i = 0; i < nwatch; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%d", dir, i);
		if (inotify_add_watch(fd, path, IN_CREATE | IN_DELETE) < 0) {
			fprintf(stderr, "badnight-holder: uid %d: inotify_add_watch %s: ", uid, path);
			perror("");
			return -1;
		}
	}
	return 0;
}

/* settle: tell the parent how it went, then hold (or exit on failure). */
static void settle(int ok) {
	char c = ok ? '+' : '-';
	if (write(ready_fd, &c, 1) != 1)
		_exit(1);
	close(ready_fd);
	if (!ok)
		_exit(1);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	for (;;)
		pause();
}

static int usage(void) {
	fprintf(stderr, "usage: badnight-holder keys UID NKEYS\n"
	                "       badnight-holder inotify UID NPROC NWATCH DIR\n");
	return 2;
}

int main(int argc, char **argv) {
	int keys = argc == 4 && strcmp(argv[1], "keys") == 0;
	int inot = argc == 6 && strcmp(argv[1], "inotify") == 0;
	if (!keys && !inot)
		return usage();
	int uid = atoi(argv[2]);
	int nproc = keys ? 1 : atoi(argv[3]);
	int n = atoi(argv[keys ? 3 : 4]);
	if (uid <= 0 || nproc < 1 || n < 0)
		return usage();

	int p[2];
	if (pipe2(p, O_CLOEXEC)) {
		perror("badnight-holder: pipe");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN); /* a holder that fails is not left a zombie */
	for (int i = 0; i < nproc; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("badnight-holder: fork");
			return 1;
		}
		if (pid == 0) {
			close(p[0]);
			ready_fd = p[1];
			signal(SIGCHLD, SIG_DFL);
			settle((keys ? hold_keys(uid, n) : hold_inotify(uid, n, argv[5])) == 0);
		}
	}
	close(p[1]);
	alarm(120); /* a holder that dies before it reports must not hang the script */
	int ok = 0, failed = 0;
	char c;
	while (ok + failed < nproc && read(p[0], &c, 1) == 1)
		c == '+' ? ok++ : failed++;
	if (ok < nproc) {
		fprintf(stderr, "badnight-holder: uid %d: %d of %d holders failed\n", uid, nproc - ok, nproc);
		return 1;
	}
	return 0;
}
