package logs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var now = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func groupOf(rep *Report, limit string) *Group {
	for i := range rep.Groups {
		if rep.Groups[i].Limit == limit {
			return &rep.Groups[i]
		}
	}
	return nil
}

// Every shape of line the scanner reads, each with its cause.
func TestScanShapes(t *testing.T) {
	in := strings.Join([]string{
		// syslog: dockerd, the keyring quota, twice.
		`Nov 21 03:00:01 agent-7 dockerd[1020]: time="2026-11-21T03:00:01Z" level=error msg="Handler for POST /v1.41/containers/abc/start returned error: OCI runtime create failed: container_linux.go:345: starting container process caused \"process_linux.go:424: container init caused \\\"join session keyring: create session key: disk quota exceeded\\\"\": unknown"`,
		`Nov 22 07:59:12 agent-7 dockerd[1020]: Error response from daemon: OCI runtime create failed: join session keyring: create session key: disk quota exceeded: unknown`,
		// docker json-file: a Node dev server.
		`{"log":"Error: ENOSPC: System limit for number of file watchers reached, watch '/app/src'\n","stream":"stderr","time":"2026-11-22T06:00:00.5Z"}`,
		// CRI log line.
		`2026-11-22T05:00:00.000000001Z stderr F runtime/cgo: pthread_create failed: Resource temporarily unavailable`,
		// journalctl -o json with the message as bytes (not UTF-8).
		`{"__REALTIME_TIMESTAMP":"1763794800000000","_SYSTEMD_UNIT":"kubelet.service","MESSAGE":[109,107,100,105,114,32,47,115,121,115,47,102,115,47,99,103,114,111,117,112,47,109,101,109,111,114,121,47,107,117,98,101,112,111,100,115,58,32,110,111,32,115,112,97,99,101,32,108,101,102,116,32,111,110,32,100,101,118,105,99,101,255]}`,
		// klog: the kubelet.
		`E1122 07:00:00.123456   11519 kubelet.go:1234] Failed to create fsnotify watcher: too many open files`,
		// Lines that mention a needle but no error: ignored.
		`Nov 22 07:00:00 agent-7 kernel: inotify: watching /var/log`,
		`Nov 22 07:00:00 agent-7 app[1]: 2 open files, all fine`,
		`plain line without anything`,
	}, "\n") + "\n"
	s := NewScanner(time.Time{}, now)
	s.Scan(strings.NewReader(in), Source{Name: "mixed.log", Journal: true})
	rep := s.Report()
	if rep.Lines != 9 || rep.Matched != 6 {
		t.Fatalf("lines %d matched %d, want 9 and 6: %+v", rep.Lines, rep.Matched, rep.Groups)
	}
	k := groupOf(rep, "keys.count")
	if k == nil || k.Count != 2 || k.Where["dockerd"] != 2 || k.First == nil ||
		k.First.Month() != time.November || k.First.Day() != 21 || k.Last.Day() != 22 {
		t.Fatalf("keys.count group: %+v", k)
	}
	for limit, where := range map[string]string{"inotify.watches": "mixed.log", "pids": "mixed.log", "cgroups.dying": "kubelet.service", "inotify.instances": "mixed.log"} {
		g := groupOf(rep, limit)
		if g == nil || g.Count != 1 || g.Where[where] != 1 {
			t.Errorf("%s group: %+v (want one, from %s)", limit, g, where)
		}
	}
	if g := groupOf(rep, "cgroups.dying"); g != nil && (g.First == nil || !g.First.Equal(time.UnixMicro(1763794800000000))) {
		t.Errorf("journald time: %v", g.First)
	}
}

// A 10 MB line, NUL bytes, invalid UTF-8 and a last line without its
// newline: nothing crashes, lines are counted, a match at the head of the
// long line and one after it are found.
func TestScanHostileInput(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("mkdir /sys/fs/cgroup/memory/x: no space left on device ")
	b.Write(bytes.Repeat([]byte("A\x00\xff"), 10<<20/3))
	b.WriteString("\n\x00\x01\x02 binary \xfe\xfe\n")
	b.WriteString("fork: Resource temporarily unavailable") // no newline
	s := NewScanner(time.Time{}, now)
	s.Scan(&b, Source{Name: "hostile"})
	rep := s.Report()
	if rep.Lines != 3 {
		t.Errorf("lines: %d, want 3", rep.Lines)
	}
	if groupOf(rep, "cgroups.dying") == nil || groupOf(rep, "pids") == nil || rep.Matched != 2 {
		t.Fatalf("groups: %+v", rep.Groups)
	}
	if g := groupOf(rep, "cgroups.dying"); utf8.RuneCountInString(g.Example) > 1001 || !utf8.ValidString(g.Example) {
		t.Errorf("example not cut to 1000 valid characters: %d", utf8.RuneCountInString(g.Example))
	}
}

func TestSince(t *testing.T) {
	in := "2026-11-20T00:00:00Z fork: Resource temporarily unavailable\n2026-11-22T07:00:00Z fork: Resource temporarily unavailable\nno time: fork: Resource temporarily unavailable\n"
	s := NewScanner(now.Add(-24*time.Hour), now)
	s.Scan(strings.NewReader(in), Source{Name: "x"})
	if g := groupOf(s.Report(), "pids"); g == nil || g.Count != 2 {
		t.Fatalf("since: %+v, want the recent line and the one without time", g)
	}
}

// Directories are walked, rotated .gz files read, and a container's log
// file names its container.
func TestRunFilesAndGzip(t *testing.T) {
	dir := t.TempDir()
	id := strings.Repeat("ab", 32)
	cdir := filepath.Join(dir, "var/lib/docker/containers", id)
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cdir, id+"-json.log"), []byte(`{"log":"Error: ENOSPC: System limit for number of file watchers reached\n","time":"2026-11-22T06:00:00Z"}`+"\n"), 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("Nov 20 01:00:00 h kernel: VFS: file-max limit 65536 reached\n"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "syslog.2.gz"), gz.Bytes(), 0o644)
	rep, err := Run(context.Background(), Options{Paths: []string{dir, filepath.Join(dir, "missing")}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if g := groupOf(rep, "inotify.watches"); g == nil || g.Where["container "+id[:12]] != 1 {
		t.Errorf("container log: %+v", g)
	}
	if g := groupOf(rep, "files"); g == nil || g.Where["kernel"] != 1 {
		t.Errorf("gzip'd syslog: %+v", g)
	}
	var missing bool
	for _, s := range rep.Sources {
		if strings.HasSuffix(s.Name, "missing") && s.Error != "" {
			missing = true
		}
	}
	if !missing {
		t.Errorf("a missing path is not reported: %+v", rep.Sources)
	}
}

func TestWhereFromPath(t *testing.T) {
	for path, want := range map[string]string{
		"/var/log/containers/web-7d9_shop_app-0123456789abcdef.log": "pod shop/web-7d9 container app",
		"/var/log/pods/shop_web-7d9_5a1e0c3e/app/0.log":             "pod shop/web-7d9 container app",
		"/var/log/syslog": "",
	} {
		if got := whereFromPath(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

// BenchmarkScan is the scanner's throughput on a syslog-like log where one
// line in 10000 is an error (go test -bench Scan -benchmem ./logs).
func BenchmarkScan(b *testing.B) {
	benchScan(b, SyntheticLog(64<<20, 10000))
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("Nov 21 03:00:01 h dockerd[1]: join session keyring: create session key: disk quota exceeded\n"))
	f.Add([]byte(`{"MESSAGE":[1,2,255],"__REALTIME_TIMESTAMP":"x"}` + "\n"))
	f.Add([]byte("E1122 07:00:00.1 no space left on device"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewScanner(time.Time{}, now)
		s.Scan(bytes.NewReader(data), Source{Name: "fuzz"})
		rep := s.Report()
		if rep.Bytes != int64(len(data)) {
			t.Fatalf("read %d of %d bytes", rep.Bytes, len(data))
		}
	})
}

// The cache of classify changes nothing: a dense log, the usual one, and
// the explain corpus as a log (each message, then the same with other
// numbers) give the same report with the cache as without it.
func TestCacheSameReport(t *testing.T) {
	corpus, err := os.ReadFile("../testdata/explain/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var asLog bytes.Buffer
	for _, line := range bytes.Split(corpus, []byte("\n")) {
		var e struct{ Message string }
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		for i := range 5 {
			m := strings.Map(func(r rune) rune {
				switch {
				case r == '\n':
					return ' '
				case '0' <= r && r <= '9':
					return '0' + (r-'0'+rune(i))%10
				}
				return r
			}, e.Message)
			fmt.Fprintf(&asLog, "Nov 22 08:00:%02d node-1 app[%d]: %s\n", i, 100+i, m)
		}
	}
	for name, data := range map[string][]byte{
		"dense":  DenseLog(4 << 20),
		"sparse": SyntheticLog(4<<20, 100),
		"corpus": asLog.Bytes(),
	} {
		cached := NewScanner(time.Time{}, now)
		cached.Scan(bytes.NewReader(data), Source{Name: name})
		plain := NewScanner(time.Time{}, now)
		plain.cache = nil
		plain.Scan(bytes.NewReader(data), Source{Name: name})
		got, want := cached.Report(), plain.Report()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: with the cache %+v\nwithout %+v", name, got, want)
		}
		if got.Matched == 0 {
			t.Errorf("%s: nothing matched", name)
		}
		t.Logf("%s: %d lines, %d matched, %d groups", name, got.Lines, got.Matched, len(got.Groups))
	}
}

// A .gz file cut short (a copy that did not finish) says so, by name; the
// lines before the cut count. Cut in the header, it says so too.
func TestTruncatedGzip(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(DenseLog(1 << 20))
	zw.Close()
	dir := t.TempDir()
	cut := filepath.Join(dir, "syslog.2.gz")
	os.WriteFile(cut, gz.Bytes()[:gz.Len()/2], 0o644)
	head := filepath.Join(dir, "syslog.3.gz")
	os.WriteFile(head, gz.Bytes()[:5], 0o644)
	whole := filepath.Join(dir, "syslog.4.gz")
	os.WriteFile(whole, gz.Bytes(), 0o644)
	rep, err := Run(context.Background(), Options{Paths: []string{cut, head, whole}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sources) != 3 {
		t.Fatalf("sources: %+v", rep.Sources)
	}
	for _, st := range rep.Sources[:2] {
		if !strings.Contains(st.Error, "truncated") {
			t.Errorf("%s: error %q, want it named truncated", st.Name, st.Error)
		}
	}
	if st := rep.Sources[0]; st.Name != cut || st.Lines == 0 || st.Bytes == 0 {
		t.Errorf("the lines before the cut are not counted: %+v", st)
	}
	if st := rep.Sources[2]; st.Error != "" || st.Lines <= rep.Sources[0].Lines {
		t.Errorf("whole file: %+v", st)
	}
}

// repeatReader reads n bytes of b over and over.
type repeatReader struct {
	b   []byte
	n   int64
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.n > 0 {
		c := copy(p[n:min(len(p), n+int(r.n))], r.b[r.off:])
		r.off = (r.off + c) % len(r.b)
		n += c
		r.n -= int64(c)
	}
	return n, nil
}

// A 100 MB line is read in bounded memory: counted as one line and one
// long line, its head looked at, and the lines after it still read.
func TestHugeLine(t *testing.T) {
	const size = 100 << 20
	in := io.MultiReader(
		strings.NewReader("mkdir /sys/fs/cgroup/memory/x: no space left on device "),
		&repeatReader{b: []byte("no space left on device, AAAA\x00\xff "), n: size},
		strings.NewReader("\nshort line\nfork: Resource temporarily unavailable\n"),
	)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := NewScanner(time.Time{}, now)
	s.Scan(in, Source{Name: "huge"})
	runtime.ReadMemStats(&after)
	rep := s.Report()
	if st := rep.Sources[0]; st.Lines != 3 || st.LongLines != 1 || st.Bytes < size || st.Error != "" {
		t.Errorf("stat: %+v, want 3 lines, 1 long", st)
	}
	if groupOf(rep, "cgroups.dying") == nil || groupOf(rep, "pids") == nil || rep.Matched != 2 {
		t.Errorf("groups: %+v", rep.Groups)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB allocated", alloc>>20)
	if alloc > 64<<20 {
		t.Errorf("%d MiB allocated for a 100 MiB line", alloc>>20)
	}
}

func TestCountLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine+1)
	edge := strings.Repeat("x", MaxLine)
	for _, tc := range []struct {
		in          string
		lines, long int64
	}{
		{"", 0, 0},
		{"a\nb\n", 2, 0},
		{edge + "\n" + edge + "\n" + edge, 2, 0},
		{long, 0, 1},
		{long + "\n", 1, 1},
		{"a\n" + long + "\nb\n" + long + long + "\n" + edge + "\n" + long, 5, 3},
	} {
		if lines, n := countLines([]byte(tc.in)); lines != tc.lines || n != tc.long {
			t.Errorf("%d bytes: %d lines, %d long; want %d, %d", len(tc.in), lines, n, tc.lines, tc.long)
		}
	}
}

// parseDockerJSON reads what parseJSONMap reads, where it reads at all.
func TestParseDockerJSON(t *testing.T) {
	lines := []string{
		`{"log":"a\n","stream":"stderr","time":"2026-11-22T06:00:00.5Z"}`,
		`{"log":"x","log":"y"}`,
		`{"log":"x"}`,
		`{"time":"2026-11-22T06:00:00Z","log":"\u00e9\ud800 \"q\" \\ \/ \b\f\r\t"}`,
		`{"log":"a\"b\\c\/d\be\ff\ng\rh\ti\\u0041"}`,
		`{"log":"bad \q escape"}`,
		`{"log":"short \u12"}`,
		`{"log":"ctl ` + "\x01" + `"}`,
		`{"log":"` + "\xff\xfe" + `"}`,
		`{"log": "space"}`,
		`{"log":"x","stream":1}`,
		`{"log":"x","MESSAGE":"y"}`,
		`{"stream":"stdout"}`,
		`{"log":"x"} `,
		`{"log":"x"}}`,
		`{"log":"x",}`,
		`{"lo\u0067":"x"}`,
		`{}`,
		`{"log":"x","time":"not a time"}`,
	}
	for _, line := range bytes.Split(DenseLog(256<<10), []byte("\n")) {
		if len(line) > 0 && line[0] == '{' {
			lines = append(lines, string(line))
		}
	}
	fast := 0
	for _, line := range lines {
		got, ok := parseDockerJSON(line)
		if !ok {
			continue
		}
		fast++
		want, wok := parseJSONMap(line, Source{})
		if !wok || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v, want %+v (%v)", line, got, want, wok)
		}
	}
	if fast < len(lines)/2 {
		t.Errorf("only %d of %d lines read by parseDockerJSON", fast, len(lines))
	}
}

func FuzzParseDockerJSON(f *testing.F) {
	f.Add(`{"log":"a\n","stream":"stderr","time":"2026-11-22T06:00:00.5Z"}`)
	f.Add(`{"log":"\u00e9\ud800 \"q\""}`)
	f.Fuzz(func(t *testing.T, line string) {
		if got, ok := parseDockerJSON(line); ok {
			if want, wok := parseJSONMap(line, Source{}); !wok || !reflect.DeepEqual(got, want) {
				t.Errorf("%q: %+v, want %+v (%v)", line, got, want, wok)
			}
		}
	})
}
