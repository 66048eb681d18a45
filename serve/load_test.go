package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestScrapeLoad measures, and asserts nothing about time: scrapers
// (ENOSPC_SCRAPERS, 50) read /metrics as Prometheus does (keep-alive,
// gzip) for ENOSPC_SCRAPE_FOR (20s), back to back or each once per
// ENOSPC_SCRAPE_EVERY, and the latencies are logged. It
// runs only when ENOSPC_SCRAPE_URL is set: the /metrics URL of a running
// enospc serve, or "fixture" for a server in this process.
//
//	enospc serve --listen 127.0.0.1:9877 &
//	ENOSPC_SCRAPE_URL=http://127.0.0.1:9877/metrics go test -run ScrapeLoad -v ./serve
func TestScrapeLoad(t *testing.T) {
	url := os.Getenv("ENOSPC_SCRAPE_URL")
	if url == "" {
		t.Skip("a measurement: set ENOSPC_SCRAPE_URL to run it")
	}
	if url == "fixture" {
		srv, _, _ := fixtureServer(t, Options{})
		ts := httptest.NewServer(srv.Handler())
		defer ts.Close()
		url = ts.URL + "/metrics"
	}
	scrapers, _ := strconv.Atoi(os.Getenv("ENOSPC_SCRAPERS"))
	if scrapers <= 0 {
		scrapers = 50
	}
	dur, err := time.ParseDuration(os.Getenv("ENOSPC_SCRAPE_FOR"))
	if err != nil {
		dur = 20 * time.Second
	}
	every, _ := time.ParseDuration(os.Getenv("ENOSPC_SCRAPE_EVERY"))
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		bodySize int
		wg       sync.WaitGroup
	)
	end := time.Now().Add(dur)
	for range scrapers {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var mine []time.Duration
			bad, size := 0, 0
			for next := time.Now(); time.Now().Before(end); {
				if every > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(every)
				}
				start := time.Now()
				resp, err := c.Get(url)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					size = len(b)
					if resp.StatusCode != 200 {
						bad++
						continue
					}
				}
				if err != nil {
					bad++
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat, errs, bodySize = append(lat, mine...), errs+bad, max(bodySize, size)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(lat) == 0 {
		t.Fatalf("no scrape succeeded (%d errors)", errs)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("%d scrapers (every %s), %s: %d scrapes (%.0f/s), %d errors, body %d bytes; p50 %s, p90 %s, p99 %s, max %s",
		scrapers, every, dur, len(lat), float64(len(lat))/dur.Seconds(), errs, bodySize,
		pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}

// BenchmarkScrape is the server's own cost of a scrape, without the
// network: a copy of the cached body and the age appended.
func BenchmarkScrape(b *testing.B) {
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			srv := New(Options{NewHost: fixtureHost})
			srv.CheckOnce(b.Context())
			h := srv.Handler()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", enc)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
