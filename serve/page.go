package serve

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var staticRoot embed.FS

// staticFS holds the page and its script, served under /static/: the page
// needs nothing from the network.
var staticFS, _ = fs.Sub(staticRoot, ".")

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	b, err := staticRoot.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}
