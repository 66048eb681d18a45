/* The few kernel types the tracer reads, declared with
 * preserve_access_index so that the loader relocates every field against
 * the running kernel's BTF (CO-RE). A full vmlinux.h is not used: it is
 * several megabytes, per architecture, and would hold struct pt_regs of the
 * machine that generated it. */
#ifndef ENOSPC_KERNEL_H
#define ENOSPC_KERNEL_H

/* bpf_tracing.h names the registers as the kernel does (di, not the
 * user-space rdi) when it believes vmlinux.h is included. */
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef signed int __s32;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef signed long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u32 u32;
typedef __u64 u64;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
};

enum {
	BPF_NOEXIST = 1,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r10;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	__u64 orig_x0;
	__s32 syscallno;
};
#else
#error "the tracer is built for amd64 and arm64 only"
#endif

typedef struct {
	unsigned int val;
} kuid_t;

struct ns_common;

struct user_namespace;

struct cred {
	kuid_t uid;
	struct user_namespace *user_ns;
};

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct css_set {
	struct cgroup_subsys_state *subsys[16];
};

struct rlimit {
	unsigned long rlim_cur;
	unsigned long rlim_max;
};

struct signal_struct {
	struct rlimit rlim[16];
};

struct super_block {
	unsigned int s_dev;
	unsigned long s_magic;
};

struct inode {
	struct super_block *i_sb;
};

struct file {
	struct inode *f_inode;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct user_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct task_struct {
	struct nsproxy *nsproxy;
	int pid;
	int tgid;
	char comm[16];
	const struct cred *cred;
	struct css_set *cgroups;
	struct signal_struct *signal;
	struct files_struct *files;
};

#pragma clang attribute pop

/* The values are placeholders: bpf_core_enum_value relocates them by name
 * against the running kernel. */
enum cgroup_subsys_id {
	memory_cgrp_id = 4,
	pids_cgrp_id = 11,
};

#endif
