package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enospc/enospc/limits"
)

// damageChildEnv names the directory of a damaged store that the test
// binary, started again by TestDamagedPagesNeverCrash, reads and writes
// (see TestMain): a fault that kills the process shows as the child's
// death, not the test's.
const damageChildEnv = "ENOSPC_HISTORY_DAMAGE_CHILD"

func damageChild(dir string) int {
	r, err := OpenReadOnly(dir)
	if err == nil {
		_, err = r.Query(nil, "", t0.Add(-time.Hour), t0.Add(30*24*time.Hour))
	}
	fmt.Println("query:", err)
	w, err := Open(dir, Options{})
	fmt.Println("open:", err)
	if err == nil {
		// A check that folds and expires: every bucket is read.
		fmt.Println("record:", w.Record(t0.Add(40*24*time.Hour), []limits.Finding{row("pids", "all", 1, 2)}))
	}
	return 0
}

// A store whose pages are damaged (bits flipped, the file cut short) is an
// error, or a history with holes, for the reader and the writer: never a
// crash (bbolt reads the file through its mapping with lengths from the
// pages) and never a hang.
func TestDamagedPagesNeverCrash(t *testing.T) {
	base := t.TempDir()
	s, err := Open(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * 24 * 12 {
		var rows []limits.Finding
		for j := range 200 {
			rows = append(rows, row("pids", fmt.Sprint("scope", j), int64(i*j%977), 1000))
		}
		if err := s.Record(t0.Add(time.Duration(i)*5*time.Minute), rows); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	orig, err := os.ReadFile(filepath.Join(base, fileName))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(7))
	cases := map[string][]byte{"cut in half": orig[:len(orig)/2], "cut to 4 pages": orig[:4*4096]}
	for i := range 40 {
		b := bytes.Clone(orig)
		p := 2 + rng.Intn(len(b)/4096-2)
		for k := range 40 {
			b[p*4096+rng.Intn(4096)] ^= byte(1 + k)
		}
		cases[fmt.Sprintf("page %d, case %d", p, i)] = b
	}
	errs := 0
	for name, b := range cases {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), damageChildEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		hung := ctx.Err() != nil
		cancel()
		switch {
		case hung:
			t.Errorf("%s: hung", name)
		case err != nil || bytes.Contains(out, []byte("fatal error")) || bytes.Contains(out, []byte("panic")):
			t.Errorf("%s: died: %v\n%.3000s", name, err, out)
		case bytes.Contains(out, []byte("damaged")) || bytes.Contains(out, []byte("malformed")) || bytes.Contains(out, []byte("invalid")):
			errs++
		}
	}
	t.Logf("%d damaged stores, %d of them an error for the reader or the writer, none a crash", len(cases), errs)
}

// One check with the clock a month ahead costs at most expireStep of the
// history before it, and the checks once the clock is right again are
// recorded, the one from the future gone.
func TestClockAheadForOneCheck(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 * 24 * 6 {
		if err := s.Record(t0.Add(time.Duration(i)*10*time.Minute), []limits.Finding{row("pids", "all", int64(i), 100000)}); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(3 * 24 * time.Hour)
	if err := s.Record(now.Add(30*24*time.Hour), []limits.Finding{row("pids", "all", 99999, 100000)}); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := s.Record(now.Add(time.Duration(i)*10*time.Minute), []limits.Finding{row("pids", "all", 7, 100000)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Query(nil, "", t0.Add(-time.Hour), now.Add(60*24*time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	var before, after, future int
	for _, smp := range got[0].Samples {
		switch {
		case smp.Used == 99999:
			future++
		case smp.T.Before(now):
			before++
		default:
			after++
		}
	}
	// 432 checks before; raw keeps 48 h, coarse the rest a 10 minutes
	// each (one a check here), less at most expireStep.
	if before < 432-int(expireStep/(10*time.Minute)) || after != 12 || future != 0 {
		t.Errorf("%d samples before the jump (want about 432), %d after (want 12), %d from the future (want 0)", before, after, future)
	}
}

// A clock set back a little (within clockSlack) leaves its checks out; set
// back more, the samples stamped after it go and it is recorded.
func TestClockSetBack(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := func(at time.Time, used int64) {
		t.Helper()
		if err := s.Record(at, []limits.Finding{row("pids", "all", used, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 * 60 { // 4 hours a minute: three folded
		rec(t0.Add(time.Duration(i)*time.Minute), 1)
	}
	last := t0.Add(239 * time.Minute)
	rec(last.Add(-5*time.Minute), 2) // within the slack: left out
	rec(t0.Add(90*time.Minute), 3)   // set back 2.5 h: 90..239 go
	rec(t0.Add(91*time.Minute), 4)
	got, err := s.Query(nil, "", t0, t0.Add(5*time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	smp := got[0].Samples
	if len(smp) != 92 || smp[89].Used != 1 || smp[90].Used != 3 || smp[91].Used != 4 {
		t.Fatalf("%d samples, want 90 of the first clock then 2 of the one set back; tail %+v", len(smp), smp[max(0, len(smp)-4):])
	}
	// The next hours fold onto the chunks the rewind cut.
	for i := range 3 * 60 {
		rec(t0.Add(92*time.Minute+time.Duration(i)*time.Minute), 5)
	}
	got, err = s.Query(nil, "", t0, t0.Add(5*time.Hour))
	if err != nil || len(got[0].Samples) != 92+180 {
		t.Fatalf("%d samples after the fold, want 272 (%v)", len(got[0].Samples), err)
	}
	for i, x := range got[0].Samples[1:] {
		if !x.T.After(got[0].Samples[i].T) {
			t.Fatalf("sample %d at %v after %v", i+1, x.T, got[0].Samples[i].T)
		}
	}
}

// A max of MaxInt64 (fs.file-max on systemd hosts) reads back as itself,
// from the head and once folded.
func TestMaxInt64ReadsBack(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := row("files", "host", 1<<40, math.MaxInt64)
	s.Record(t0, []limits.Finding{big})
	a, err := s.Query(nil, "", t0, t0)
	if err != nil || a[0].Samples[0].Max != math.MaxInt64 || a[0].Samples[0].Used != 1<<40 {
		t.Fatalf("from the head: %+v %v", a, err)
	}
	s.Record(t0.Add(time.Hour), []limits.Finding{big})
	b, err := s.Query(nil, "", t0, t0)
	if err != nil || b[0].Samples[0] != a[0].Samples[0] {
		t.Fatalf("folded: %+v, from the head %+v (%v)", b, a, err)
	}
}

// A row twice in one check is recorded once, the first, before and after
// the fold, and so in the coarse sample.
func TestRowTwiceInACheck(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Record(t0, []limits.Finding{row("inodes", "/mnt", 10, 100), row("inodes", "/mnt", 90, 100)})
	a, _ := s.Query(nil, "", t0, t0)
	s.Record(t0.Add(time.Hour), nil)
	b, _ := s.Query(nil, "", t0, t0)
	c := coarseOf(t, s)
	if len(a) != 1 || len(a[0].Samples) != 1 || a[0].Samples[0].Used != 10 || len(b) != 1 || b[0].Samples[0] != a[0].Samples[0] ||
		len(c) != 1 || c[0].Samples[0].Used != 10 {
		t.Errorf("head %+v, folded %+v, coarse %+v: want one sample of 10 each", a, b, c)
	}
}

// A coarse window of samples with a use and one unknown check keeps the
// severity of the samples with a use.
func TestCoarseSeverityOfUnknown(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Record(t0, []limits.Finding{row("inodes", "/mnt", 10, 100)})
	s.Record(t0.Add(time.Minute), []limits.Finding{{Limit: "inodes", Scope: "/mnt", Severity: limits.Unknown}})
	s.Record(t0.Add(20*time.Minute), []limits.Finding{{Limit: "inodes", Scope: "/mnt", Severity: limits.Unknown}})
	s.Record(t0.Add(time.Hour), nil)
	c := coarseOf(t, s)
	if len(c) != 1 || len(c[0].Samples) != 2 {
		t.Fatalf("coarse %+v", c)
	}
	if w := c[0].Samples[0]; !w.HasUse || w.Used != 10 || w.Severity != limits.OK {
		t.Errorf("window with a use: %+v", w)
	}
	if w := c[0].Samples[1]; w.HasUse || w.Severity != limits.Unknown {
		t.Errorf("window of an unknown check alone: %+v", w)
	}
}

// A damaged chunk costs its samples: the checks after it are recorded and
// the other rows read, the damage counted.
func TestDamagedChunkIsSkipped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		s.Record(t0.Add(time.Duration(i)*30*time.Minute), []limits.Finding{row("inodes", "/mnt", int64(i), 1000), row("pids", "all", 1, 10)})
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, fileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketPend, bucketRaw} {
			k, v := tx.Bucket(name).Cursor().First()
			v = bytes.Clone(v)
			v[len(v)-1] ^= 0xff
			if err := tx.Bucket(name).Put(bytes.Clone(k), v[:len(v)-3]); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 7; i < 7+2*24; i++ {
		if err := s.Record(t0.Add(time.Duration(i)*30*time.Minute), []limits.Finding{row("pids", "all", 1, 10)}); err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
	got, err := s.Query([]string{"pids"}, "", t0, t0.Add(48*time.Hour))
	if err != nil || len(got) != 1 || len(got[0].Samples) < 48 {
		t.Fatalf("pids after the damage: %+v %v", got, err)
	}
	if s.Skipped() == 0 {
		t.Error("the damaged chunks were not counted")
	}
}

// A writer that a reader keeps out for longer than it waits says ErrBusy
// (serve then leaves that check out and goes on recording), and records
// again once the reader is done; a reader kept out by the writer says
// ErrBusy too.
func TestBusy(t *testing.T) {
	defer func(w, r time.Duration) { writerWait, readerWait = w, r }(writerWait, readerWait)
	writerWait, readerWait = 200*time.Millisecond, 200*time.Millisecond
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Record(t0, []limits.Finding{row("pids", "all", 1, 10)}); err != nil {
		t.Fatal(err)
	}
	held, err := bolt.Open(filepath.Join(dir, fileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record(t0.Add(time.Minute), []limits.Finding{row("pids", "all", 2, 10)}); !errors.Is(err, ErrBusy) {
		t.Errorf("a writer kept out: %v, want ErrBusy", err)
	}
	held.Close()
	if err := s.Record(t0.Add(2*time.Minute), []limits.Finding{row("pids", "all", 3, 10)}); err != nil {
		t.Fatal(err)
	}
	held, err = bolt.Open(filepath.Join(dir, fileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Query(nil, "", t0, t0.Add(time.Hour)); !errors.Is(err, ErrBusy) {
		t.Errorf("a reader kept out: %v, want ErrBusy", err)
	}
}

// history.db linked to another file (a directory another user can write)
// is refused by the writer and the reader, and the file is left as it was.
func TestStoreSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "roots-file")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, fileName)); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Error("a writer opened a store that is a symlink")
	}
	if r, err := OpenReadOnly(dir); err == nil {
		if _, err := r.Query(nil, "", t0, t0.Add(time.Hour)); err == nil {
			t.Error("a reader read a store that is a symlink")
		}
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() != 0 {
		t.Errorf("the symlink's target was written: %v %v", fi.Size(), err)
	}
}
