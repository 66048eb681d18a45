package serve

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/enospc/enospc/check"
)

// snapshot is one check, encoded once for every request that reads it.
// It is never changed after publish.
type snapshot struct {
	rep  *check.Report // nil when no check has succeeded yet
	at   time.Time     // when rep was taken
	took time.Duration // how long the last check took
	err  error         // why the last check failed, if it did

	// metrics is the text exposition of everything but the age, which
	// changes with every request (metricsTail); metricsGz is the same
	// bytes gzipped, left open for the tail.
	metrics   []byte
	metricsGz openGzip
	// check and history are the JSON of /api/v1/check and /api/v1/history.
	check, history cached
}

// cached is a JSON body and its gzip form.
type cached struct{ plain, gz []byte }

var metricsContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// encode builds the snapshot of a check; s.mu is not held.
func (s *Server) encode(rep *check.Report, at time.Time, took time.Duration, err error) *snapshot {
	sn := &snapshot{rep: rep, at: at, took: took, err: err}
	if rep == nil {
		return sn
	}
	sn.metrics = s.encodeMetrics(sn)
	sn.metricsGz = newOpenGzip(sn.metrics)
	sn.check = newCached(jsonBytes(rep))
	s.mu.Lock()
	hist := map[string]any{"started": s.started.Unix(), "series": s.historySeries()}
	s.mu.Unlock()
	sn.history = newCached(jsonBytes(hist))
	return sn
}

func jsonBytes(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		// Only a value JSON cannot hold (NaN) gets here; say so
		// rather than serve half a document.
		b.Reset()
		fmt.Fprintf(&b, "{\"error\": %q}\n", err.Error())
	}
	return b.Bytes()
}

func newCached(b []byte) cached {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return cached{plain: b, gz: z.Bytes()}
}

func writeCached(w http.ResponseWriter, r *http.Request, c cached) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		writeBody(w, c.gz, nil)
		return
	}
	writeBody(w, c.plain, nil)
}

// acceptsGzip says whether the request's Accept-Encoding allows gzip
// (and does not give it q=0).
func acceptsGzip(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(h, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
			if !ok {
				return true
			}
			v, err := strconv.ParseFloat(q, 64)
			return err == nil && v > 0
		}
	}
	return false
}

// metricsTail is the part of /metrics that changes with every request:
// the snapshot's age and whether it is stale.
func metricsTail(age time.Duration, stale bool) []byte {
	st := 0
	if stale {
		st = 1
	}
	return fmt.Appendf(nil, "# HELP enospc_snapshot_age_seconds How old the snapshot served is.\n"+
		"# TYPE enospc_snapshot_age_seconds gauge\n"+
		"enospc_snapshot_age_seconds %g\n"+
		"# HELP enospc_snapshot_stale Whether the snapshot is older than its stale age (3 intervals, or interval + timeout): a check is failing or hung.\n"+
		"# TYPE enospc_snapshot_stale gauge\n"+
		"enospc_snapshot_stale %d\n", age.Seconds(), st)
}

// openGzip is a gzip member of a cached body whose deflate stream is
// flushed to a byte boundary but not ended, so that a per-request tail is
// appended as one stored block: a scrape copies the compressed body and
// the few hundred bytes of its age, and compresses nothing. The result
// is a single ordinary gzip member, which every client reads.
type openGzip struct {
	head []byte // gzip header and the flushed deflate blocks
	crc  uint32 // CRC-32 of the body
	size uint32 // length of the body, mod 2^32
}

func newOpenGzip(body []byte) openGzip {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(body)
	zw.Flush() // a sync flush: the deflate stream ends on a byte boundary, not final
	return openGzip{head: z.Bytes(), crc: crc32.ChecksumIEEE(body), size: uint32(len(body))}
}

// tail returns what follows head to make the whole gzip member: the tail
// as stored blocks (RFC 1951 3.2.4; the tail is a few hundred bytes, far
// below one block's 65,535), the last one final, and the trailer of
// CRC-32 and size (RFC 1952).
func (g openGzip) tail(tail []byte) []byte {
	out := make([]byte, 0, 5+len(tail)+8)
	rest := tail
	for {
		n := min(len(rest), 0xffff)
		final := byte(0) // BTYPE=00: stored
		if n == len(rest) {
			final = 1
		}
		out = append(out, final)
		out = binary.LittleEndian.AppendUint16(out, uint16(n))
		out = binary.LittleEndian.AppendUint16(out, ^uint16(n))
		out = append(out, rest[:n]...)
		rest = rest[n:]
		if final == 1 {
			break
		}
	}
	out = binary.LittleEndian.AppendUint32(out, crc32.Update(g.crc, crc32.IEEETable, tail))
	out = binary.LittleEndian.AppendUint32(out, g.size+uint32(len(tail)))
	return out
}

// writeBody writes a cached body and its per-request tail without
// copying the body, with its length so that it is not chunked.
func writeBody(w http.ResponseWriter, body, tail []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+len(tail)))
	w.Write(body)
	if len(tail) > 0 {
		w.Write(tail)
	}
}
