package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// Options say what to scan.
type Options struct {
	// Paths are files or directories (walked; .gz files decompressed);
	// "-" is Stdin.
	Paths []string
	Stdin io.Reader
	// Journal reads journald through journalctl.
	Journal bool
	// Root is the host's root (a DaemonSet's /host); default paths and
	// the journal are read under it.
	Root  string
	Since time.Time
	Now   time.Time
}

// DefaultPaths are the node's usual logs, scanned when no path is given:
// syslog, kernel and daemon logs, and the container logs of docker and
// kubelet.
var DefaultPaths = []string{
	"/var/log/syslog", "/var/log/messages", "/var/log/kern.log", "/var/log/daemon.log",
	"/var/log/containers", "/var/log/pods", "/var/lib/docker/containers",
}

// Run scans every source and groups the matches. A source that cannot be
// read is a stat with its error; the others are still scanned.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	s := NewScanner(opts.Since, opts.Now)
	if opts.Journal {
		scanJournal(ctx, s, opts)
	}
	for _, p := range opts.Paths {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if p == "-" {
			s.Scan(ctxReader{ctx, opts.Stdin}, Source{Name: "stdin"})
			continue
		}
		scanPath(ctx, s, p)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s.Report(), nil
}

// Defaults returns the default paths that exist under root, and whether
// journalctl is there to read the journal.
func Defaults(root string) (paths []string, journal bool) {
	for _, p := range DefaultPaths {
		full := filepath.Join(root, p)
		if _, err := os.Stat(full); err == nil {
			paths = append(paths, full)
		}
	}
	_, err := exec.LookPath("journalctl")
	return paths, err == nil
}

func scanPath(ctx context.Context, s *Scanner, p string) {
	fi, err := os.Stat(p)
	if err != nil {
		s.rep.Sources = append(s.rep.Sources, SourceStat{Name: p, Error: err.Error()})
		return
	}
	if !fi.IsDir() {
		scanFile(ctx, s, p)
		return
	}
	var files []string
	filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			s.rep.Sources = append(s.rep.Sources, SourceStat{Name: path, Error: err.Error()})
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	for _, f := range files {
		if ctx.Err() != nil {
			return
		}
		scanFile(ctx, s, f)
	}
}

func scanFile(ctx context.Context, s *Scanner, path string) {
	f, err := os.Open(path)
	if err != nil {
		s.rep.Sources = append(s.rep.Sources, SourceStat{Name: path, Error: err.Error()})
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = ErrTruncated
			}
			s.rep.Sources = append(s.rep.Sources, SourceStat{Name: path, Error: err.Error()})
			return
		}
		defer zr.Close()
		r = truncatedGzip{zr}
	}
	s.Scan(ctxReader{ctx, r}, Source{Name: path, Where: whereFromPath(path)})
}

// scanJournal streams journalctl's JSON records.
func scanJournal(ctx context.Context, s *Scanner, opts Options) {
	args := []string{"-o", "json", "--no-pager", "-q"}
	if !opts.Since.IsZero() {
		args = append(args, "--since", opts.Since.Local().Format("2006-01-02 15:04:05"))
	}
	if opts.Root != "/" {
		args = append(args, "--directory", filepath.Join(opts.Root, "var/log/journal"))
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.rep.Sources = append(s.rep.Sources, SourceStat{Name: "journald", Error: err.Error()})
		return
	}
	if err := cmd.Start(); err != nil {
		s.rep.Sources = append(s.rep.Sources, SourceStat{Name: "journald", Error: err.Error()})
		return
	}
	s.Scan(out, Source{Name: "journald", Journal: true})
	if err := cmd.Wait(); err != nil && ctx.Err() == nil {
		st := &s.rep.Sources[len(s.rep.Sources)-1]
		st.Error = fmt.Sprintf("journalctl: %v", err)
	}
}

// ErrTruncated is the error of a compressed file that ends before its
// stream does (a copy cut short, a rotation still writing): what came
// before was read and counts.
var ErrTruncated = errors.New("truncated: the gzip stream ends before its end; the lines before were read")

// truncatedGzip names gzip's io.ErrUnexpectedEOF, which would otherwise
// read as "unexpected EOF".
type truncatedGzip struct{ r io.Reader }

func (t truncatedGzip) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.ErrUnexpectedEOF {
		err = ErrTruncated
	}
	return n, err
}

// ctxReader ends a read when the context does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
