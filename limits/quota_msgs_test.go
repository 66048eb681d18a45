package limits

// Real messages of the quota limits. The lab machine's kernel cannot
// enforce a quota (no CONFIG_QFMT_V2, CONFIG_XFS_QUOTA or
// CONFIG_TMPFS_QUOTA: see lab/kernel/quota_test.go), so these are quoted
// from public reports, the same ones testdata/explain/corpus.jsonl holds.
// A message cannot tell the block quota from the inode quota: both refuse
// with EDQUOT, and creating a file needs an inode as much as a block.

func init() {
	realMessages["quota"] = []string{
		// https://github.com/mikeizbicki/cmc-csci143/issues/187: pip in a home with a full quota.
		`ERROR: Could not install packages due to an OSError: [Errno 122] Disk quota exceeded`,
		// https://github.com/mikeizbicki/cmc-csci143/issues/276: rootless docker's layers in the user's home.
		"`ApplyLayer exit status 1 stdout:  stderr: write /tmp/pagila-hw/.git/modules/pagila/objects/pack/pack-1ead750f63194c1efa562e88cfd3664bd4e5df32.pack: disk quota exceeded",
		// https://github.com/hbons/SparkleShare/issues/1529: the remote home's quota.
		`remote: error: file write error (Disk quota exceeded)`,
		// https://github.com/mikeizbicki/cmc-csci046/issues/308
		`fatal: write error: Disk quota exceeded2 MiB | 25.92 MiB/s`,
		// https://github.com/RailsApps/learn-rails/issues/20
		`fatal: Unable to create '/home/action/workspace/learn-rails/.git/index.lock': Disk quota exceeded`,
	}
	realMessages["quota.inodes"] = []string{
		// https://github.com/radical-cybertools/radical.entk/issues/403
		`mkfifo: cannot create fifo ‘/home/aydins/.radical/saga/adaptors/shell_job//fifo.29209’: Disk quota exceeded`,
		// https://github.com/RailsApps/learn-rails/issues/20
		`fatal: Unable to create '/home/action/workspace/learn-rails/.git/index.lock': Disk quota exceeded`,
		// https://github.com/mikeizbicki/cmc-csci143/issues/459
		`fatal: could not create work tree dir 'pagila-hw2': Disk quota exceeded`,
	}
	// The key quota fails with the same words; its messages are not a
	// filesystem's.
	keyMsgs := []string{realMessages["keys.count"][0], realMessages["keys.bytes"][0], realMessages["keys.bytes"][1], realMessages["leak.keyrings"][0]}
	foreignMessages["quota"] = append(append([]string{}, keyMsgs...), realMessages["disk"][0], realMessages["inotify.watches"][0])
	foreignMessages["quota.inodes"] = append(append([]string{}, keyMsgs...), realMessages["inodes"][0], realMessages["inodes"][1])
}
