package serve

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// HTTPLimits bound what one client can hold of the server. serve runs as
// root on a node: a client that opens connections and sends nothing, or
// sends its headers a byte at a time, must cost a bounded amount for a
// bounded time.
type HTTPLimits struct {
	// ReadHeaderTimeout closes a connection whose request headers have
	// not all come (slowloris).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the whole request; serve takes no bodies.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, which is a copy of cached
	// bytes: only a client that does not read reaches it.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// MaxConns is how many connections are open at once; more wait in
	// the kernel's accept queue.
	MaxConns int
}

// DefaultHTTPLimits fit Prometheus scraping every 15 s to 1 min with
// keep-alive, and a few browsers on the page.
var DefaultHTTPLimits = HTTPLimits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       90 * time.Second,
	MaxConns:          64,
}

// NewHTTPServer is an http.Server for h with the limits l.
func NewHTTPServer(h http.Handler, l HTTPLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}

// Listen listens on addr (TCP) and accepts at most maxConns connections
// at once.
func Listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		ln = netutil.LimitListener(ln, maxConns)
	}
	return ln, nil
}
