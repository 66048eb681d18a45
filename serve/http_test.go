package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startHTTP serves the fixture snapshot with limits l on a loopback port.
func startHTTP(t *testing.T, l HTTPLimits) string {
	t.Helper()
	srv, _, _ := fixtureServer(t, Options{})
	ln, err := Listen("127.0.0.1:0", l.MaxConns)
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(srv.Handler(), l)
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// request sends one GET on c and reads the whole response.
func request(c net.Conn, br *bufio.Reader, path string) (int, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func rssKiB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// Five thousand keep-alive connections, each after one request, are
// closed by the server once idle, and what they held is given back.
func TestIdleConnectionsClosed(t *testing.T) {
	const conns = 5000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	n := conns
	if int(lim.Cur) < 2*conns+200 {
		n = (int(lim.Cur) - 200) / 2
		t.Logf("RLIMIT_NOFILE %d: %d connections", lim.Cur, n)
	}
	l := DefaultHTTPLimits
	l.IdleTimeout = 2 * time.Second
	l.MaxConns = n + 100
	addr := startHTTP(t, l)

	runtime.GC()
	debug.FreeOSMemory()
	goroutines0, rss0 := runtime.NumGoroutine(), rssKiB(t)

	cs := make([]net.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	next := atomic.Int64{}
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				cs[i] = c
				if code, err := request(c, bufio.NewReader(c), "/healthz"); err != nil || code != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	opened := time.Now()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d connections failed their request", f, n)
	}
	goroutinesOpen, rssOpen := runtime.NumGoroutine(), rssKiB(t)
	if goroutinesOpen < goroutines0+n {
		t.Errorf("%d goroutines with %d connections open (%d before): the connections were not all held", goroutinesOpen, n, goroutines0)
	}

	// Each connection reads EOF once the server has closed it.
	var open atomic.Int64
	for _, c := range cs {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				open.Add(1)
			}
			c.Close()
		})
	}
	wg.Wait()
	closedIn := time.Since(opened)
	if o := open.Load(); o > 0 {
		t.Errorf("%d of %d idle connections still open after %s (IdleTimeout %s)", o, n, closedIn, l.IdleTimeout)
	}

	var goroutines, rss int
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		runtime.GC()
		debug.FreeOSMemory()
		goroutines, rss = runtime.NumGoroutine(), rssKiB(t)
		if goroutines <= goroutines0+20 && rss <= rss0+(rssOpen-rss0)/2+4096 {
			break
		}
	}
	t.Logf("%d connections: goroutines %d → %d → %d, RSS %d → %d → %d KiB; all closed %s after the last opened",
		n, goroutines0, goroutinesOpen, goroutines, rss0, rssOpen, rss, closedIn.Round(time.Millisecond))
	if goroutines > goroutines0+20 {
		t.Errorf("goroutines stay up: %d, %d before", goroutines, goroutines0)
	}
	if rss > rss0+(rssOpen-rss0)/2+4096 {
		t.Errorf("RSS stays up: %d KiB, %d before and %d with the connections open", rss, rss0, rssOpen)
	}
}

// A client that sends its headers a line at a time is cut off at
// ReadHeaderTimeout.
func TestSlowHeadersClosed(t *testing.T) {
	l := DefaultHTTPLimits
	l.ReadHeaderTimeout = 300 * time.Millisecond
	addr := startHTTP(t, l)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		done <- err
	}()
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
	for i := 0; ; i++ {
		select {
		case <-done:
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("closed after %s, ReadHeaderTimeout %s", d, l.ReadHeaderTimeout)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("a slow client kept its connection for 10 s")
		}
		fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i)
	}
}

// Past MaxConns a connection waits to be accepted until one closes.
func TestConnectionCap(t *testing.T) {
	l := DefaultHTTPLimits
	l.MaxConns = 2
	addr := startHTTP(t, l)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code, err := request(c, bufio.NewReader(c), "/healthz"); err != nil || code != 200 {
			t.Fatalf("request: %d %v", code, err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr) // the kernel accepts; serve does not yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan int, 1)
	go func() {
		code, _ := request(c, bufio.NewReader(c), "/healthz")
		got <- code
	}()
	select {
	case code := <-got:
		t.Fatalf("a third connection was served (%d) with the cap at 2", code)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	select {
	case code := <-got:
		if code != 200 {
			t.Errorf("third connection: %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not served after one closed")
	}
}
