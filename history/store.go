package history

// The store is one bbolt file, history.db, in the history directory.
//
// Why bbolt and a layout of our own rather than the Prometheus TSDB,
// which enospc used first: the TSDB package imports Prometheus's
// configuration and through it the cloud providers' SDKs, whose package
// initialisers ran at every start of every enospc command (some 3 ms of
// an idle check of 15, and 16 MiB of binary). bbolt gives the
// transactions and crash safety; the TSDB's own chunk encoding
// (chunkenc's XOR, Gorilla compression, a package that imports none of
// that) keeps a sample in a few bytes, which a key a sample cannot.
//
// Buckets (integers big-endian, so that keys sort by them):
//
//	meta     "last"  → ms of the last check recorded (see Record for one not after it)
//	         "expired" → the time (ms) the last expiry counted from (see expire)
//	series   id (4)  → limit and scope, each a uvarint length and its bytes
//	head     ms (8)  → one check's rows not yet folded into chunks (encodeHead)
//	raw      hour (8) + id (4) → that hour's samples of one row (chunk.encode)
//	pending  span (8) + id (4) → the coarse samples so far of the coarseSpan under way
//	coarse   span (8) + id (4) → one row's coarse samples of a past coarseSpan
//
// A check is one write transaction: one head entry. When a check opens a
// new hour, the head's older hours are folded into one chunk per row and
// hour, their coarse samples are added to the pending chunks, the pending
// chunks of spans that are over move to coarse, and what is past its
// retention is deleted, in the same transaction. Keys lead with time, so
// that raw and coarse are only ever appended to (their pages filled, not
// split) and expire from the front; only pending, a chunk a row, is
// rewritten.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	bolt "go.etcd.io/bbolt"

	"github.com/enospc/enospc/limits"
)

var (
	bucketMeta   = []byte("meta")
	bucketSeries = []byte("series")
	bucketHead   = []byte("head")
	bucketRaw    = []byte("raw")
	bucketCoarse = []byte("coarse")
	bucketPend   = []byte("pending")
	allBuckets   = [][]byte{bucketMeta, bucketSeries, bucketHead, bucketRaw, bucketPend, bucketCoarse}
	keyLast      = []byte("last")
	keyExpired   = []byte("expired")
)

const (
	hourMs = int64(time.Hour / time.Millisecond)
	// coarseSpan is the time one coarse chunk covers: 36 samples.
	coarseSpan   = 6 * time.Hour
	coarseSpanMs = int64(coarseSpan / time.Millisecond)
)

// floorTo rounds ms down to a multiple of step. The store holds no time
// before 1970 (Record leaves such a check out), so that keys, unsigned,
// sort by time: a time before is rounded to 0.
func floorTo(ms, step int64) int64 {
	if ms <= 0 {
		return 0
	}
	return ms / step * step
}

// metaInt reads an integer of the meta bucket, 0 when absent.
func metaInt(meta *bolt.Bucket, key []byte) int64 {
	if v := meta.Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func be64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

func chunkKey(start int64, id uint32) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, uint64(start))
	binary.BigEndian.PutUint32(k[8:], id)
	return k
}

// keyTime and keyID read a chunk key; ok is false for a key of another
// length.
func keyTime(k []byte) int64   { return int64(binary.BigEndian.Uint64(k)) }
func keyID(k []byte) uint32    { return binary.BigEndian.Uint32(k[8:]) }
func chunkKeyOK(k []byte) bool { return len(k) == 12 }

// seriesKey names one row.
type seriesKey struct{ limit, scope string }

func encodeSeries(k seriesKey) []byte {
	b := binary.AppendUvarint(nil, uint64(len(k.limit)))
	b = append(b, k.limit...)
	b = binary.AppendUvarint(b, uint64(len(k.scope)))
	return append(b, k.scope...)
}

func decodeSeries(b []byte) (seriesKey, error) {
	var k seriesKey
	for _, f := range []*string{&k.limit, &k.scope} {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return k, errors.New("malformed series name")
		}
		*f = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	if len(b) != 0 {
		return k, errors.New("malformed series name")
	}
	return k, nil
}

// point is one row's sample inside the store: used and max are NaN for
// an unknown row.
type point struct {
	t         int64
	used, max float64
	sev       limits.Severity
}

func (p point) sample() Sample {
	s := Sample{T: time.UnixMilli(p.t).UTC(), Severity: p.sev}
	if !math.IsNaN(p.used) {
		s.HasUse, s.Used, s.Max = true, toInt64(p.used), toInt64(p.max)
	}
	return s
}

// toInt64 converts a stored value back: a float64 holds an int64 to 2^53
// exactly and MaxInt64 (fs.file-max on systemd hosts) as 2^63, which
// int64() would turn negative.
func toInt64(v float64) int64 {
	switch {
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	case math.IsNaN(v):
		return 0
	}
	return int64(v)
}

// headRow is one row of a head entry.
type headRow struct {
	id uint32
	p  point
}

// encodeHead appends one check's rows: per row, the series id, the
// severity shifted left once with a low bit set when used and max follow,
// and used and max as varints.
func encodeHead(b []byte, rows []headRow) []byte {
	for _, r := range rows {
		b = binary.AppendUvarint(b, uint64(r.id))
		has := !math.IsNaN(r.p.used)
		f := uint64(r.p.sev) << 1
		if has {
			f |= 1
		}
		b = binary.AppendUvarint(b, f)
		if has {
			b = binary.AppendVarint(b, toInt64(r.p.used))
			b = binary.AppendVarint(b, toInt64(r.p.max))
		}
	}
	return b
}

// decodeHead calls fn for each row of a head entry taken at ms, and
// stops at the first malformed byte with an error.
func decodeHead(ms int64, b []byte, fn func(headRow)) error {
	for len(b) > 0 {
		id, w := binary.Uvarint(b)
		if w <= 0 || id > math.MaxUint32 {
			return errors.New("malformed history entry")
		}
		b = b[w:]
		f, w := binary.Uvarint(b)
		if w <= 0 || f>>1 > uint64(limits.Critical) {
			return errors.New("malformed history entry")
		}
		b = b[w:]
		r := headRow{id: uint32(id), p: point{t: ms, used: math.NaN(), max: math.NaN(), sev: limits.Severity(f >> 1)}}
		if f&1 == 1 {
			u, w := binary.Varint(b)
			if w <= 0 {
				return errors.New("malformed history entry")
			}
			b = b[w:]
			m, w := binary.Varint(b)
			if w <= 0 {
				return errors.New("malformed history entry")
			}
			b = b[w:]
			r.p.used, r.p.max = float64(u), float64(m)
		}
		fn(r)
	}
	return nil
}

// chunk builds one row's samples of an hour or a coarse span: three XOR
// chunks (used, max, severity), each a Gorilla-compressed series.
type chunk struct {
	c    [3]*chunkenc.XORChunk
	app  [3]chunkenc.Appender
	last int64
	n    int
}

func newChunk() *chunk {
	var c chunk
	for i := range c.c {
		c.c[i] = chunkenc.NewXORChunk()
		c.app[i], _ = c.c[i].Appender() // a new chunk's appender has no error
	}
	return &c
}

// add appends p; samples not after the last one are dropped, and a chunk
// holds at most math.MaxUint16 samples (the XOR chunk's count).
func (c *chunk) add(p point) {
	if (c.n > 0 && p.t <= c.last) || c.n == math.MaxUint16 {
		return
	}
	c.app[0].Append(0, p.t, p.used)
	c.app[1].Append(0, p.t, p.max)
	c.app[2].Append(0, p.t, float64(p.sev))
	c.last = p.t
	c.n++
}

func (c *chunk) encode() []byte {
	var b []byte
	for _, x := range c.c {
		d := x.Bytes()
		b = binary.AppendUvarint(b, uint64(len(d)))
		b = append(b, d...)
	}
	return b
}

// decodeChunk calls fn for every sample of an encoded chunk from mint to
// maxt; with usedOnly, max and severity are not decoded (a trend reads
// only the use). A malformed chunk is an error, never a panic.
func decodeChunk(b []byte, mint, maxt int64, usedOnly bool, fn func(point)) (err error) {
	defer func() {
		// chunkenc trusts its bytes: a chunk damaged on disk must not
		// take serve down.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed history chunk: %v", r)
		}
	}()
	var parts [3][]byte
	for i := range parts {
		n, w := binary.Uvarint(b)
		// An XOR chunk starts with its 2-byte count of samples.
		if w <= 0 || n > uint64(len(b)-w) || n < 2 {
			return errors.New("malformed history chunk")
		}
		parts[i] = b[w : w+int(n)]
		b = b[w+int(n):]
	}
	var its [3]chunkenc.Iterator
	want := 3
	if usedOnly {
		want = 1
	}
	for i := range want {
		c, err := chunkenc.FromData(chunkenc.EncXOR, parts[i])
		if err != nil {
			return fmt.Errorf("malformed history chunk: %w", err)
		}
		its[i] = c.Iterator(nil)
	}
	for its[0].Next() == chunkenc.ValFloat {
		t, u := its[0].At()
		p := point{t: t, used: u, max: math.NaN(), sev: limits.OK}
		if !usedOnly {
			// The three were appended together: one sample each.
			if its[1].Next() != chunkenc.ValFloat || its[2].Next() != chunkenc.ValFloat {
				return errors.New("malformed history chunk: series of different lengths")
			}
			_, p.max = its[1].At()
			t2, s := its[2].At()
			if t2 != t || s < 0 || s > float64(limits.Critical) || s != math.Trunc(s) {
				return errors.New("malformed history chunk: severity")
			}
			p.sev = limits.Severity(s)
		}
		if t > maxt {
			break
		}
		if t >= mint {
			fn(p)
		}
	}
	for i := range want {
		if err := its[i].Err(); err != nil {
			return fmt.Errorf("malformed history chunk: %w", err)
		}
	}
	return nil
}

// appendChunk adds points (in time order) to the chunk under key in b,
// re-encoding what it held; a chunk there that does not decode is passed
// to skip and replaced.
func appendChunk(b *bolt.Bucket, key []byte, pts []point, skip func(error)) error {
	c := newChunk()
	if old := b.Get(key); old != nil {
		if err := decodeChunk(old, math.MinInt64, math.MaxInt64, false, c.add); err != nil {
			skip(err)
			c = newChunk()
		}
	}
	for _, p := range pts {
		c.add(p)
	}
	return b.Put(key, c.encode())
}

// fold moves the head's entries taken before `before` into chunks: one
// raw chunk per row and hour, and their coarse samples into the pending
// chunks; then it moves the pending chunks of spans over by `before` to
// coarse, and deletes what is past retention.
func (s *Store) fold(tx *bolt.Tx, before, now int64) error {
	head := tx.Bucket(bucketHead)
	raw, pend, coarse := tx.Bucket(bucketRaw), tx.Bucket(bucketPend), tx.Bucket(bucketCoarse)
	// Appended to only: full pages.
	raw.FillPercent, coarse.FillPercent = 1, 1
	// One hour at a time, so that only an hour's chunks are in memory.
	for {
		cur := head.Cursor()
		k, v := cur.First()
		if len(k) != 8 || keyTime(k) >= before {
			break
		}
		hour := floorTo(keyTime(k), hourMs)
		end := min(hour+hourMs, before)
		chunks := map[uint32]*chunk{}
		windows := map[uint32]*coarseWindow{}
		coarsePts := map[uint32][]point{}
		var done [][]byte
		for ; len(k) == 8 && keyTime(k) < end; k, v = cur.Next() {
			done = append(done, bytes.Clone(k))
			// A damaged entry is decoded into a scratch chunk first, so
			// that none of it goes in: it is skipped, and deleted.
			if err := decodeHead(keyTime(k), v, func(headRow) {}); err != nil {
				s.skip(err)
				continue
			}
			decodeHead(keyTime(k), v, func(r headRow) {
				c := chunks[r.id]
				if c == nil {
					c = newChunk()
					chunks[r.id] = c
				}
				c.add(r.p)
				w := windows[r.id]
				if w == nil {
					w = &coarseWindow{}
					windows[r.id] = w
				}
				if out, ok := w.add(r.p); ok {
					coarsePts[r.id] = append(coarsePts[r.id], out)
				}
			})
		}
		// In key order, so that the bucket is appended to.
		ids := make([]uint32, 0, len(chunks))
		for id := range chunks {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			key := chunkKey(hour, id)
			if raw.Get(key) != nil {
				// Only after a rewind: the hour's samples go after those
				// before the rewind in its chunk.
				var pts []point
				if err := decodeChunk(chunks[id].encode(), math.MinInt64, math.MaxInt64, false, func(p point) { pts = append(pts, p) }); err != nil {
					return err
				}
				if err := appendChunk(raw, key, pts, s.skip); err != nil {
					return err
				}
				continue
			}
			if err := raw.Put(key, chunks[id].encode()); err != nil {
				return err
			}
		}
		// An hour holds whole coarse windows: the last one closes here.
		for _, id := range ids {
			if out, ok := windows[id].flush(); ok {
				coarsePts[id] = append(coarsePts[id], out)
			}
		}
		span := floorTo(hour, coarseSpanMs)
		for _, id := range ids {
			if pts := coarsePts[id]; len(pts) > 0 {
				if err := appendChunk(pend, chunkKey(span, id), pts, s.skip); err != nil {
					return err
				}
			}
		}
		for _, k := range done {
			if err := head.Delete(k); err != nil {
				return err
			}
		}
	}
	// Spans over move from pending to coarse, in key order.
	var over [][]byte
	cur := pend.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if !chunkKeyOK(k) || keyTime(k)+coarseSpanMs > before {
			break
		}
		if coarse.Get(k) == nil {
			if err := coarse.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
				return err
			}
		} else {
			// Only after a rewind: the span's samples since go after
			// those before it.
			var pts []point
			if err := decodeChunk(v, math.MinInt64, math.MaxInt64, false, func(p point) { pts = append(pts, p) }); err != nil {
				s.skip(err)
			} else if err := appendChunk(coarse, bytes.Clone(k), pts, s.skip); err != nil {
				return err
			}
		}
		over = append(over, bytes.Clone(k))
	}
	for _, k := range over {
		if err := pend.Delete(k); err != nil {
			return err
		}
	}
	return s.expire(tx, now)
}

// coarseWindow reduces a row's samples, in time order, to one a
// CoarseStep window: the one of highest use (the first, when several
// are), with the worst severity of the window's samples that have a use
// (unknown only when none has).
type coarseWindow struct {
	w     int64
	best  point
	worst limits.Severity
	open  bool
}

// add takes the next sample and returns the window it closes, if any.
func (c *coarseWindow) add(p point) (point, bool) {
	w := floorTo(p.t, stepMs)
	var out point
	var closed bool
	if c.open && w != c.w {
		out, closed = c.flush()
	}
	if !c.open {
		c.w, c.best, c.worst, c.open = w, p, p.sev, true
		return out, closed
	}
	switch {
	case math.IsNaN(p.used):
		if math.IsNaN(c.best.used) {
			c.worst = max(c.worst, p.sev)
		}
	case math.IsNaN(c.best.used):
		c.best, c.worst = p, p.sev
	default:
		if p.used > c.best.used {
			c.best = p
		}
		c.worst = max(c.worst, p.sev)
	}
	return out, closed
}

func (c *coarseWindow) flush() (point, bool) {
	if !c.open {
		return point{}, false
	}
	c.open = false
	out := c.best
	out.sev = c.worst
	return out, true
}

// expire deletes the raw chunks older than RawRetention, the coarse ones
// older than the store's retention, and the rows that have nothing left.
// It counts from now, but at most expireStep further than the last time:
// a clock days ahead for one check costs hours of history, not days.
func (s *Store) expire(tx *bolt.Tx, now int64) error {
	meta := tx.Bucket(bucketMeta)
	if prev := metaInt(meta, keyExpired); prev > 0 {
		now = min(now, prev+expireStep.Milliseconds())
	}
	if err := meta.Put(keyExpired, be64(now)); err != nil {
		return err
	}
	for _, b := range []struct {
		name  []byte
		span  int64
		limit time.Duration
	}{{bucketRaw, hourMs, RawRetention}, {bucketPend, coarseSpanMs, s.retention}, {bucketCoarse, coarseSpanMs, s.retention}} {
		cutoff := now - b.limit.Milliseconds()
		bk := tx.Bucket(b.name)
		var old [][]byte
		cur := bk.Cursor()
		for k, _ := cur.First(); k != nil && (!chunkKeyOK(k) || keyTime(k)+b.span <= cutoff); k, _ = cur.Next() {
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
	}
	// The rows that are left, to forget the others.
	live := map[uint32]bool{}
	for _, name := range [][]byte{bucketRaw, bucketPend, bucketCoarse} {
		tx.Bucket(name).ForEach(func(k, _ []byte) error {
			live[keyID(k)] = true // every key left is a chunk key
			return nil
		})
	}
	if err := tx.Bucket(bucketHead).ForEach(func(k, v []byte) error {
		return decodeHead(0, v, func(r headRow) { live[r.id] = true })
	}); err != nil {
		// A damaged entry, which the next fold skips: no row is
		// forgotten until then.
		return nil
	}
	series := tx.Bucket(bucketSeries)
	var gone [][]byte
	series.ForEach(func(k, v []byte) error {
		if len(k) != 4 || !live[binary.BigEndian.Uint32(k)] {
			gone = append(gone, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range gone {
		if err := series.Delete(k); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		// The writer's ids are read from the store again at its next
		// check.
		s.ids = nil
	}
	return nil
}

// selection is the rows a query reads, by id.
type selection map[uint32]seriesKey

func selectSeries(tx *bolt.Tx, only []string, scope string) (selection, error) {
	want := map[string]bool{}
	for _, o := range only {
		want[o] = true
	}
	sel := selection{}
	err := tx.Bucket(bucketSeries).ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return errors.New("malformed history: series key")
		}
		sk, err := decodeSeries(v)
		if err != nil {
			return err
		}
		if (len(want) == 0 || want[sk.limit]) && (scope == "" || sk.scope == scope) {
			sel[binary.BigEndian.Uint32(k)] = sk
		}
		return nil
	})
	return sel, err
}

// readChunks reads the selected rows' samples from mint to maxt out of
// one chunk bucket whose chunks each cover span, with room for extra more
// a row. A few rows are read a chunk at a time; many, by one pass over
// the window's keys. The rows' slices are sized first, from the chunks'
// counts of samples: a query of every row's 48 h is millions of samples,
// which growing by appends would allocate three times over.
func readChunks(b *bolt.Bucket, sel selection, span, mint, maxt int64, usedOnly bool, extra int, out map[uint32][]Sample, skip func(error)) error {
	// The window, cut to the keys there are.
	cur := b.Cursor()
	first, _ := cur.First()
	last, _ := cur.Last()
	if first == nil {
		return nil
	}
	if !chunkKeyOK(first) || !chunkKeyOK(last) {
		return errors.New("malformed history: chunk key")
	}
	from := max(floorTo(mint, span), keyTime(first))
	to := min(maxt, keyTime(last))
	if to < from {
		return nil
	}
	visit := func(fn func(id uint32, v []byte)) error {
		if len(sel) <= 16 {
			ids := make([]uint32, 0, len(sel))
			for id := range sel {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for t := from; t <= to; t += span {
				for _, id := range ids {
					if v := b.Get(chunkKey(t, id)); v != nil {
						fn(id, v)
					}
				}
			}
			return nil
		}
		for k, v := cur.Seek(be64(from)); k != nil; k, v = cur.Next() {
			if !chunkKeyOK(k) {
				return errors.New("malformed history: chunk key")
			}
			if keyTime(k) > maxt {
				break
			}
			if _, ok := sel[keyID(k)]; ok {
				fn(keyID(k), v)
			}
		}
		return nil
	}
	need := map[uint32]int{}
	if err := visit(func(id uint32, v []byte) { need[id] += chunkCount(v) }); err != nil {
		return err
	}
	for id, n := range need {
		out[id] = slices.Grow(out[id], n+extra)
	}
	return visit(func(id uint32, v []byte) { readChunk(v, mint, maxt, usedOnly, id, out, skip) })
}

// chunkCount is how many samples an encoded chunk holds, from the count
// its first XOR chunk starts with (0 for one that does not say).
func chunkCount(v []byte) int {
	n, w := binary.Uvarint(v)
	if w <= 0 || n < 2 || n > uint64(len(v)-w) {
		return 0
	}
	return int(binary.BigEndian.Uint16(v[w:]))
}

// readChunk adds one row's chunk to out; a chunk that does not decode is
// passed to skip, and none of its samples are added.
func readChunk(v []byte, mint, maxt int64, usedOnly bool, id uint32, out map[uint32][]Sample, skip func(error)) {
	n := len(out[id])
	if err := decodeChunk(v, mint, maxt, usedOnly, func(p point) { out[id] = append(out[id], p.sample()) }); err != nil {
		out[id] = out[id][:n]
		skip(err)
	}
}

// readStore reads raw samples (chunks, then the head) from rawSince and
// coarse ones from since, to until, of the selected rows.
func readStore(tx *bolt.Tx, only []string, scope string, rawSince, since, until int64, usedOnly bool, skip func(error)) ([]Series, error) {
	sel, err := selectSeries(tx, only, scope)
	if err != nil || len(sel) == 0 {
		return nil, err
	}
	rawSince, since = max(rawSince, 0), max(since, 0)
	// Straight into Samples: a query of every row's 48 h is millions.
	raw := map[uint32][]Sample{}
	cur := tx.Bucket(bucketHead).Cursor()
	heads := 0 // the checks in the head, at most a sample each a row
	for k, _ := cur.Seek(be64(rawSince)); len(k) == 8 && keyTime(k) <= until; k, _ = cur.Next() {
		heads++
	}
	if err := readChunks(tx.Bucket(bucketRaw), sel, hourMs, rawSince, until, usedOnly, heads, raw, skip); err != nil {
		return nil, err
	}
	for k, v := cur.Seek(be64(rawSince)); k != nil; k, v = cur.Next() {
		ms := int64(binary.BigEndian.Uint64(k))
		if ms > until {
			break
		}
		if err := decodeHead(ms, v, func(headRow) {}); err != nil {
			skip(err)
			continue
		}
		decodeHead(ms, v, func(r headRow) {
			if _, ok := sel[r.id]; ok {
				raw[r.id] = append(raw[r.id], r.p.sample())
			}
		})
	}
	// Past spans, then the one under way.
	coarse := map[uint32][]Sample{}
	for _, name := range [][]byte{bucketCoarse, bucketPend} {
		if err := readChunks(tx.Bucket(name), sel, coarseSpanMs, since, until, usedOnly, 0, coarse, skip); err != nil {
			return nil, err
		}
	}
	return merge(toSeries(sel, raw), toSeries(sel, coarse)), nil
}

func toSeries(sel selection, samples map[uint32][]Sample) []Series {
	out := make([]Series, 0, len(samples))
	for id, ss := range samples {
		if len(ss) > 0 {
			out = append(out, Series{Limit: sel[id].limit, Scope: sel[id].scope, Samples: ss})
		}
	}
	return out
}

// rewind deletes what was recorded at or after ms, for a clock set back
// to ms: the samples stamped by the clock that was ahead (whichever of
// the two was wrong, the store keeps one timeline), in the head and in
// the chunks, whose earlier samples are kept.
func (s *Store) rewind(tx *bolt.Tx, ms int64) error {
	head := tx.Bucket(bucketHead)
	var gone [][]byte
	cur := head.Cursor()
	for k, _ := cur.Seek(be64(ms)); k != nil; k, _ = cur.Next() {
		gone = append(gone, bytes.Clone(k))
	}
	for _, k := range gone {
		if err := head.Delete(k); err != nil {
			return err
		}
	}
	for _, b := range []struct {
		name []byte
		span int64
	}{{bucketRaw, hourMs}, {bucketPend, coarseSpanMs}, {bucketCoarse, coarseSpanMs}} {
		bk := tx.Bucket(b.name)
		type kv struct{ k, v []byte }
		var later []kv
		cur := bk.Cursor()
		for k, v := cur.Seek(be64(floorTo(ms, b.span))); k != nil; k, v = cur.Next() {
			later = append(later, kv{bytes.Clone(k), bytes.Clone(v)})
		}
		for _, e := range later {
			if err := bk.Delete(e.k); err != nil {
				return err
			}
			if !chunkKeyOK(e.k) || keyTime(e.k) >= ms {
				continue
			}
			// The chunk began before ms: its samples before ms stay.
			c := newChunk()
			if err := decodeChunk(e.v, math.MinInt64, ms-1, false, c.add); err != nil {
				s.skip(err)
				continue
			}
			if c.n > 0 {
				if err := bk.Put(e.k, c.encode()); err != nil {
					return err
				}
			}
		}
	}
	meta := tx.Bucket(bucketMeta)
	if exp := metaInt(meta, keyExpired); exp > ms {
		if err := meta.Put(keyExpired, be64(ms)); err != nil {
			return err
		}
	}
	s.headFrom = 0
	if k, _ := head.Cursor().First(); len(k) == 8 {
		s.headFrom = keyTime(k)
	}
	return nil
}
