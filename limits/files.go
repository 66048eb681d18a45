package limits

// Open files, host-wide (Documentation/admin-guide/sysctl/fs.rst, file-max
// and file-nr).
//
// /proc/sys/fs/file-nr holds three numbers: allocated file handles, free
// allocated handles (always 0 since 2.6) and fs.file-max. Past file-max,
// open(2) fails with ENFILE, "too many open files in system", and the
// kernel logs "VFS: file-max limit N reached".

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	Files ID = "files"
)

var filesFamily = Family{
	Name: "files",
	Limits: []Limit{{
		ID:    Files,
		Clues: filesClues,
		Raise: filesRaise,
		Title: "open files on the host (fs.file-max)",
		Unit:  "files",
		Doc:   "File handles allocated by all processes against fs.file-max.",
		Signatures: []*Signature{
			NewSignature(`(?i)too many open files in system`),
			NewSignature(`(?i)\bENFILE\b`),
			NewSignature(`(?i)VFS: file-max limit \d+ reached`),
		},
		Remedy: filesRemedy,
	}},
	Read: readFiles,
}

// FileNr is /proc/sys/fs/file-nr.
type FileNr struct {
	Allocated, Free, Max int64
}

func parseFileNr(r io.Reader) (FileNr, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return FileNr{}, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return FileNr{}, fmt.Errorf("file-nr: want 3 fields, have %d", len(f))
	}
	var v [3]int64
	for i := range f {
		if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			return FileNr{}, fmt.Errorf("file-nr: %w", err)
		}
	}
	return FileNr{v[0], v[1], v[2]}, nil
}

func readFiles(env *Env) []Finding {
	b, err := env.Host.ReadProc("sys", "fs", "file-nr")
	if err != nil {
		return []Finding{unknown("files", "host", "files", err)}
	}
	nr, err := parseFileNr(bytes.NewReader(b))
	if err != nil {
		return []Finding{unknown("files", "host", "files", err)}
	}
	u := Finding{Limit: "files", Scope: "host", Used: nr.Allocated - nr.Free, Max: nr.Max, Unit: "files"}
	if env.Census != nil {
		h := newHolders(env, topConsumers)
		for i := range env.Census.Processes {
			p := &env.Census.Processes[i]
			h.addProcess(p, p.UID, int64(p.FDs))
		}
		u.setHolders(h)
		u.NeedsRoot = env.Census.FDUnreadable > 0
	}
	return []Finding{u}
}

// filesRaise doubles fs.file-max.
var filesRaise = raiseTo("fs.file-max", func(u Finding, cur int64) int64 { return cur * 2 }, "low: struct file memory, only when used")

func filesRemedy(u Finding) []string {
	return []string{
		"find the process holding the most files (consumers) and whether it leaks descriptors",
		fmt.Sprintf("raise the limit: sysctl -w fs.file-max=%d", advised(filesRaise, u, nil)),
	}
}

// filesClues are the words and facts of an error message that point to files (explain).
var filesClues = []clue.Clue{
	{Errno: clue.ENFILE, Prior: 0.9,
		Why: "ENFILE, \"too many open files in system\": the host's fs.file-max is reached"},
	{Words: []string{"file-max", "vfs: file-max"}, Prior: 0.9,
		Why: "the message names fs.file-max"},
}
