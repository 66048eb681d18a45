package explain

// Rules of the quota family (limits/quota.go). explain's own rules
// (rules.go) name "quota" for EDQUOT from a file operation and for the
// ENOSPC of an XFS project quota; these add its inode twin: EDQUOT does
// not say whether the blocks or the inodes ran out, and creating a file,
// a directory or a fifo takes an inode. The block quota stays first: it is
// the one usually full, and checking the host confirms which it is.

func init() {
	registerRule(func(t string, e errnos, s scorer) {
		keyring := containsAny(t, "session key", "keyring", "add_key", "keyctl", "request_key")
		if !e.dquot || keyring {
			return
		}
		if containsAny(t, "cannot touch", "cannot create", "could not create", "unable to create", "failed to create", "mkdir", "mkfifo", "mknod", "symlink", "index.lock", "no inode") {
			s.add("quota.inodes", 0.65, "creating a file fails with EDQUOT when its owner's inode quota is used up as well as at its block quota")
			return
		}
		s.add("quota.inodes", 0.5, "or the inode quota of that user, group or project")
	})
}
