//go:build ignore

/* enospc trace: the syscalls that fail with an errno a kernel limit can
 * cause, caught at sys_exit and folded per (process, syscall, errno) in a
 * hash map that user space drains every interval. Nothing is sent per
 * failure: a burst of a million refused calls costs a counter increment
 * each and loses nothing. */

#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define EAGAIN 11
#define ENOMEM 12
#define ENFILE 23
#define EMFILE 24
#define ENOSPC 28
#define EADDRNOTAVAIL 99
#define EDQUOT 122

#define RLIMIT_NPROC 6
#define RLIMIT_NOFILE 7

/* Flags of a syscall in syscall_class, filled from Go (the numbers are the
 * architecture's, the C code holds none). */
#define F_EAGAIN 1        /* EAGAIN from it means a limit */
#define F_ENOMEM 2        /* ENOMEM from it means a limit */
#define F_ADDRNOTAVAIL 4  /* EADDRNOTAVAIL from it means a limit */
#define F_FD0 8           /* its first argument is a file descriptor */
#define PATH_ARG_SHIFT 8  /* bits 8-10: index+1 of its path argument */

#define NR_SYSCALLS 1024
#define PATH_LEN 128

struct fold_key {
	__u32 tgid;
	__u32 nr;
	__u32 err;
	__u32 pad;
};

struct failure {
	__u64 count;
	__u64 first_ns;
	__u64 last_ns;
	__u64 cgroup_v2;
	__u64 cgroup_pids;
	__u64 cgroup_memory;
	__u64 args[4];
	__u64 nofile_cur;
	__u64 nproc_cur;
	__u64 fs_magic;
	__u32 fs_dev;
	__u32 tid;
	__u32 uid;
	__u32 flags;
	__u32 mnt_ns;
	__u32 user_ns;
	char comm[16];
	char path[PATH_LEN];
};

#define FL_PATH 1   /* path holds the path argument */
#define FL_FS 2     /* fs_dev and fs_magic are the first argument's filesystem */

enum counter {
	C_KEPT = 0,    /* failures counted in the map */
	C_FOLDED = 1,  /* of those, repeats of a key already there */
	C_DROPPED = 2, /* failures lost: the map was full */
	C_COUNTERS = 3,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct fold_key);
	__type(value, struct failure);
} failures SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} syscall_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* A new entry is built here rather than on the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct failure);
} scratch SEC(".maps");

/* The tracer's own process, whose failures are its own business. */
volatile const __u32 self_tgid = 0;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline long syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#else
	return BPF_CORE_READ(regs, syscallno);
#endif
}

static __always_inline bool keep(__u32 err, __u32 cls)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
	case EMFILE:
	case ENFILE:
		return true;
	case EAGAIN:
		return cls & F_EAGAIN;
	case ENOMEM:
		return cls & F_ENOMEM;
	case EADDRNOTAVAIL:
		return cls & F_ADDRNOTAVAIL;
	}
	return false;
}

static __always_inline __u64 subsys_cgroup_id(struct task_struct *task, int id)
{
	if (id < 0 || id >= 16)
		return 0;
	struct css_set *cgroups = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = 0;
	bpf_probe_read_kernel(&css, sizeof(css), &cgroups->subsys[id]);
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

/* The filesystem of an open file descriptor, read now: the process may
 * have exited by the time user space looks. */
static __always_inline bool fd_filesystem(struct task_struct *task, __u64 fd, struct failure *f)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return false;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return false;
	struct super_block *sb = BPF_CORE_READ(file, f_inode, i_sb);
	if (!sb)
		return false;
	f->fs_dev = BPF_CORE_READ(sb, s_dev);
	f->fs_magic = BPF_CORE_READ(sb, s_magic);
	return true;
}

static __always_inline int on_exit(struct pt_regs *regs, long ret)
{
	if (ret >= 0 || ret < -4095)
		return 0;
	__u32 err = -ret;
	long nr = syscall_nr(regs);
	if (nr < 0 || nr >= NR_SYSCALLS)
		return 0;
	__u32 idx = nr;
	__u32 *clsp = bpf_map_lookup_elem(&syscall_class, &idx);
	if (!clsp)
		return 0;
	__u32 cls = *clsp;
	if (!keep(err, cls))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == self_tgid)
		return 0;

	__u64 now = bpf_ktime_get_ns();
	struct fold_key k = {.tgid = tgid, .nr = idx, .err = err};
	struct failure *f = bpf_map_lookup_elem(&failures, &k);
	if (f) {
		__sync_fetch_and_add(&f->count, 1);
		f->last_ns = now;
		count(C_KEPT);
		count(C_FOLDED);
		return 0;
	}

	__u32 zero = 0;
	f = bpf_map_lookup_elem(&scratch, &zero);
	if (!f)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	f->count = 1;
	f->first_ns = now;
	f->last_ns = now;
	f->tid = (__u32)pid_tgid;
	f->uid = (__u32)bpf_get_current_uid_gid();
	f->flags = 0;
	f->fs_dev = 0;
	f->fs_magic = 0;
	f->cgroup_v2 = bpf_get_current_cgroup_id();
	f->cgroup_pids = 0;
	f->cgroup_memory = 0;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id))
		f->cgroup_pids = subsys_cgroup_id(task, bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id));
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		f->cgroup_memory = subsys_cgroup_id(task, bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id));
	f->args[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	f->args[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	f->args[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	f->args[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	f->nofile_cur = BPF_CORE_READ(sig, rlim[RLIMIT_NOFILE].rlim_cur);
	f->nproc_cur = BPF_CORE_READ(sig, rlim[RLIMIT_NPROC].rlim_cur);
	f->mnt_ns = 0;
	f->user_ns = 0;
	if (bpf_core_field_exists(struct ns_common, inum)) {
		f->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
		f->user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	}
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	f->path[0] = 0;
	__u32 parg = (cls >> PATH_ARG_SHIFT) & 7;
	if (parg >= 1 && parg <= 4) {
		if (bpf_probe_read_user_str(f->path, sizeof(f->path), (void *)f->args[(parg - 1) & 3]) > 0)
			f->flags |= FL_PATH;
	}
	if ((cls & F_FD0) && fd_filesystem(task, f->args[0], f))
		f->flags |= FL_FS;

	long e = bpf_map_update_elem(&failures, &k, f, BPF_NOEXIST);
	if (e == 0) {
		count(C_KEPT);
		return 0;
	}
	/* Another CPU inserted the same key first. */
	struct failure *again = bpf_map_lookup_elem(&failures, &k);
	if (again) {
		__sync_fetch_and_add(&again->count, 1);
		again->last_ns = now;
		count(C_KEPT);
		count(C_FOLDED);
		return 0;
	}
	count(C_DROPPED);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	return on_exit(regs, ret);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit_raw, struct pt_regs *regs, long ret)
{
	return on_exit(regs, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
