// Command loadgen is scripts/bench-serve's load generator: CONCURRENCY
// scrapers, each GETting one URL back to back over a kept-alive connection
// (as Prometheus does), for a fixed duration. It prints the requests, the
// errors (transport errors and non-200 answers), the throughput and the
// latency percentiles, then one machine-readable line:
//
//	RESULT requests=N errors=N rps=F ok_rps=F p50_ms=F p99_ms=F max_ms=F bytes=N
//
// It sends traffic only where it is told, and stops by itself after the
// duration (each request is also bounded by -timeout).
//
//	go run ./scripts/loadgen -c 50 -d 60s -url http://127.0.0.1:9877/metrics
//	go run ./scripts/loadgen -free-port    prints a free loopback host:port
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	conc := flag.Int("c", 50, "concurrent scrapers")
	dur := flag.Duration("d", 60*time.Second, "how long to scrape")
	target := flag.String("url", "", "the URL to GET")
	timeout := flag.Duration("timeout", 10*time.Second, "bound of one request")
	accept := flag.String("accept", "text/plain;version=0.0.4;q=0.9,*/*;q=0.1", "Accept header (Prometheus's text format by default)")
	freePort := flag.Bool("free-port", false, "print a free loopback host:port and exit")
	flag.Parse()

	if *freePort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().String())
		ln.Close()
		return
	}
	if *target == "" || *conc < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: need -url, -c >= 1 and -d > 0")
		os.Exit(2)
	}

	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			MaxIdleConns:        *conc,
			MaxIdleConnsPerHost: *conc,
			MaxConnsPerHost:     *conc,
			IdleConnTimeout:     90 * time.Second,
			// Go asks for gzip and unpacks it, as Prometheus does.
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()

	type result struct {
		lat    []time.Duration
		errs   int
		bytes  int64
		errTxt map[string]int
	}
	results := make([]result, *conc)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *conc {
		wg.Go(func() {
			r := &results[i]
			r.errTxt = map[string]int{}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
				req.Header.Set("Accept", *accept)
				t0 := time.Now()
				resp, err := client.Do(req)
				var n int64
				if err == nil {
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				took := time.Since(t0)
				if ctx.Err() != nil && err != nil && errors.Is(err, context.DeadlineExceeded) {
					break // cut off by the end of the run: not an error of the server
				}
				if err != nil {
					r.errs++
					r.errTxt[err.Error()]++
					continue
				}
				r.lat = append(r.lat, took)
				r.bytes += n
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var lat []time.Duration
	errs, bytes := 0, int64(0)
	errTxt := map[string]int{}
	for _, r := range results {
		lat = append(lat, r.lat...)
		errs += r.errs
		bytes += r.bytes
		for k, v := range r.errTxt {
			errTxt[k] += v
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	n := len(lat) + errs
	avgBytes := int64(0)
	if len(lat) > 0 {
		avgBytes = bytes / int64(len(lat))
	}
	rps := float64(n) / elapsed.Seconds()
	fmt.Printf("%s: %d scrapers for %s: %d requests (%.1f/s), %d errors, latency of the %d successes p50 %.2fms p99 %.2fms max %.2fms, %d bytes a response (unpacked)\n",
		*target, *conc, elapsed.Round(time.Millisecond), n, rps, errs, len(lat), ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)), avgBytes)
	for k, v := range errTxt {
		fmt.Printf("  error x%d: %s\n", v, k)
	}
	fmt.Printf("RESULT requests=%d errors=%d rps=%.1f ok_rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f bytes=%d\n",
		n, errs, rps, float64(len(lat))/elapsed.Seconds(), ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)), avgBytes)
}
