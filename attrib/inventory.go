package attrib

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Container is one container as its runtime knows it.
type Container struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Image   string `json:"image,omitempty"`
	Runtime string `json:"runtime"` // "docker", "containerd", "cri-o"
	// State is the runtime's word: "running", "exited", "created",
	// "paused", "stopped", "unknown".
	State string `json:"state,omitempty"`
	// Live is true when the container has processes by its runtime's
	// account: running or paused (frozen, not gone), or a containerd task
	// created but not started (runc's init holds the container).
	Live bool `json:"live"`
	// Namespace is the containerd namespace ("moby" for docker's, "k8s.io"
	// for the CRI's).
	Namespace string            `json:"containerd_namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// The Kubernetes pod, from the labels a CRI sets.
	PodName      string `json:"pod,omitempty"`
	PodNamespace string `json:"pod_namespace,omitempty"`
	PodUID       string `json:"pod_uid,omitempty"`

	// source is the runtime that listed the container (docker's
	// containers are also listed by containerd, in namespace "moby").
	source string
}

// Kubernetes labels a CRI puts on the containers it creates (and the
// dockershim put on docker's).
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

func (c *Container) podFromLabels() {
	c.PodName = c.Labels[LabelPodName]
	c.PodNamespace = c.Labels[LabelPodNamespace]
	c.PodUID = c.Labels[LabelPodUID]
	if n := c.Labels[LabelContainerName]; n != "" && c.Name == "" {
		c.Name = n
	}
}

// Source is one runtime endpoint and what became of asking it.
type Source struct {
	Runtime  string `json:"runtime"`
	Endpoint string `json:"endpoint"`
	// Reached is true when the runtime answered; Containers is then how
	// many containers it listed.
	Reached    bool   `json:"reached"`
	Containers int    `json:"containers"`
	Error      string `json:"error,omitempty"`
	// Absent is true when there is no socket at all: the runtime is not
	// installed or not running, which is not a fault.
	Absent  bool          `json:"absent,omitempty"`
	Elapsed time.Duration `json:"-"`
}

// Inventory is every container the reachable runtimes list.
type Inventory struct {
	Sources []Source `json:"sources"`
	// Containers by full id.
	Containers map[string]*Container `json:"containers"`
	// ContainerdNamespaces are the namespaces containerd listed.
	ContainerdNamespaces map[string]bool `json:"containerd_namespaces,omitempty"`

	// containerdSock is the socket containerd answered on, for
	// SettleStates.
	containerdSock string
}

// NewInventory returns an empty inventory.
func NewInventory() *Inventory {
	return &Inventory{Containers: map[string]*Container{}, ContainerdNamespaces: map[string]bool{}}
}

// Lookup finds a container by full id, or, for the hex ids of docker and
// the CRI, by a unique prefix of at least 12 characters (the short ids
// people paste). Other ids (containerd's, chosen by users) match exactly.
func (inv *Inventory) Lookup(id string) (*Container, bool) {
	if inv == nil || id == "" {
		return nil, false
	}
	if c, ok := inv.Containers[id]; ok {
		return c, true
	}
	if len(id) < 12 || len(id) >= 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, false
	}
	var found *Container
	for full, c := range inv.Containers {
		if strings.HasPrefix(full, id) {
			if found != nil {
				return nil, false
			}
			found = c
		}
	}
	return found, found != nil
}

// Reached reports whether the runtime answered.
func (inv *Inventory) Reached(runtime string) bool {
	if inv == nil {
		return false
	}
	for _, s := range inv.Sources {
		if s.Runtime == runtime && s.Reached {
			return true
		}
	}
	return false
}

// AllAnswered reports whether every runtime that is there answered, and at
// least one did: only then does no runtime listing a container mean it is
// gone.
func (inv *Inventory) AllAnswered() bool {
	if inv == nil {
		return false
	}
	for _, s := range inv.Sources {
		if !s.Reached && !s.Absent {
			return false
		}
	}
	return inv.AnyReached()
}

// AnyFailed reports whether a runtime that is there did not answer.
func (inv *Inventory) AnyFailed() bool {
	if inv == nil {
		return false
	}
	for _, s := range inv.Sources {
		if !s.Reached && !s.Absent {
			return true
		}
	}
	return false
}

// AnyReached reports whether some runtime answered.
func (inv *Inventory) AnyReached() bool {
	if inv == nil {
		return false
	}
	for _, s := range inv.Sources {
		if s.Reached {
			return true
		}
	}
	return false
}

// Notes says which runtimes could not be asked and why, for the report.
func (inv *Inventory) Notes() []string {
	if inv == nil {
		return nil
	}
	var out []string
	for _, s := range inv.Sources {
		if s.Reached && s.Error != "" {
			out = append(out, fmt.Sprintf("%s at %s answered, but not all: %s", s.Runtime, s.Endpoint, s.Error))
		}
		if s.Reached || s.Absent {
			continue
		}
		out = append(out, fmt.Sprintf("%s at %s not reached (%s): its containers are named by id only", s.Runtime, s.Endpoint, s.Error))
	}
	return out
}

// add merges c into the inventory. docker's view of a container wins over
// containerd's view of the same one (namespace "moby"): it has the name
// and image the user gave.
func (inv *Inventory) add(c *Container) {
	old, ok := inv.Containers[c.ID]
	if !ok {
		inv.Containers[c.ID] = c
		return
	}
	if old.source == "docker" && c.source != "docker" {
		if old.Namespace == "" {
			old.Namespace = c.Namespace
		}
		return
	}
	if c.Namespace == "" {
		c.Namespace = old.Namespace
	}
	inv.Containers[c.ID] = c
}

// SettleStates gives a state to the containers listed without one
// (containerd's): a container some process of which is in the census is
// running; the others' tasks are asked for one by one, within timeout.
func (inv *Inventory) SettleStates(ctx context.Context, timeout time.Duration, hasProcesses func(id string) bool) {
	if inv == nil {
		return
	}
	var todo []*Container
	for _, c := range inv.Containers {
		if c.State != "" || c.source != "containerd" {
			continue
		}
		if hasProcesses(c.ID) {
			// Its processes run (or are frozen, or runc's init waits
			// to start them): as far as its resources go, it runs.
			c.State, c.Live = "running", true
			continue
		}
		todo = append(todo, c)
	}
	if len(todo) == 0 || inv.containerdSock == "" {
		for _, c := range todo {
			c.State = "unknown"
		}
		return
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The answers are applied only once all are in: a call still running
	// after the timeout writes to nothing anyone reads.
	var states []taskAnswer
	if _, _, err := runBounded(cctx, func(ctx context.Context) ([]*Container, []string, error) {
		var err error
		states, err = settleContainerd(ctx, inv.containerdSock, todo)
		return nil, nil, err
	}); err != nil {
		states = nil
		for i := range inv.Sources {
			if inv.Sources[i].Runtime == "containerd" {
				inv.Sources[i].Error = "task states: " + err.Error()
			}
		}
	}
	for i, c := range todo {
		c.State = "unknown"
		if i < len(states) && states[i].state != "" {
			c.State, c.Live = states[i].state, states[i].live
		}
	}
}

// Options say where the runtimes listen. Empty endpoints are not asked.
type Options struct {
	// DockerHost is the Docker Engine API address, unix:///var/run/docker.sock.
	DockerHost string
	// ContainerdAddress is containerd's socket, /run/containerd/containerd.sock.
	ContainerdAddress string
	// CRIOSocket is CRI-O's socket, /var/run/crio/crio.sock.
	CRIOSocket string
	// Timeout bounds each runtime's answer.
	Timeout time.Duration
	// SocketPath maps a socket path as given to the path to dial (a host
	// root mounted elsewhere); nil dials it as is.
	SocketPath func(string) string
}

// Defaults are the runtimes' usual endpoints.
var Defaults = Options{
	DockerHost:        "unix:///var/run/docker.sock",
	ContainerdAddress: "/run/containerd/containerd.sock",
	CRIOSocket:        "/var/run/crio/crio.sock",
	Timeout:           2 * time.Second,
}

// Collect asks every configured runtime for its containers, concurrently,
// each bounded by opts.Timeout. It never fails: a runtime that cannot be
// asked is a Source with its error.
func Collect(ctx context.Context, opts Options) *Inventory {
	if opts.Timeout <= 0 {
		opts.Timeout = Defaults.Timeout
	}
	if opts.SocketPath == nil {
		opts.SocketPath = func(p string) string { return p }
	}
	type job struct {
		runtime, endpoint, sock string
		list                    func(ctx context.Context, sock string) ([]*Container, []string, error)
	}
	var jobs []job
	if opts.DockerHost != "" {
		sock := strings.TrimPrefix(opts.DockerHost, "unix://")
		jobs = append(jobs, job{"docker", opts.DockerHost, sock, listDocker})
	}
	if opts.ContainerdAddress != "" {
		sock := strings.TrimPrefix(opts.ContainerdAddress, "unix://")
		jobs = append(jobs, job{"containerd", opts.ContainerdAddress, sock, listContainerd})
	}
	if opts.CRIOSocket != "" {
		sock := strings.TrimPrefix(opts.CRIOSocket, "unix://")
		jobs = append(jobs, job{"cri-o", opts.CRIOSocket, sock, listCRIO})
	}
	inv := NewInventory()
	results := make([][]*Container, len(jobs))
	namespaces := make([][]string, len(jobs))
	inv.Sources = make([]Source, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		src := &inv.Sources[i]
		src.Runtime, src.Endpoint = j.runtime, j.endpoint
		sock := j.sock
		if !strings.Contains(sock, "://") {
			sock = opts.SocketPath(sock)
			if _, err := os.Stat(sock); errors.Is(err, os.ErrNotExist) {
				src.Absent, src.Error = true, "no socket"
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
			defer cancel()
			cs, nss, err := runBounded(cctx, func(c context.Context) ([]*Container, []string, error) { return j.list(c, sock) })
			src.Elapsed = time.Since(start)
			if err != nil {
				src.Error = err.Error()
				return
			}
			src.Reached, src.Containers = true, len(cs)
			results[i], namespaces[i] = cs, nss
			if j.runtime == "containerd" {
				inv.containerdSock = sock
			}
		}()
	}
	wg.Wait()
	// Docker's answers first so that they win the merge whatever order
	// the runtimes answered in.
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return jobs[order[a]].runtime == "docker" && jobs[order[b]].runtime != "docker" })
	for _, i := range order {
		for _, c := range results[i] {
			c.source = jobs[i].runtime
			inv.add(c)
		}
		for _, ns := range namespaces[i] {
			inv.ContainerdNamespaces[ns] = true
		}
	}
	return inv
}

// runBounded runs f and returns when it does or when ctx ends, whichever
// comes first: a client library that ignores its context cannot hang the
// check.
func runBounded(ctx context.Context, f func(context.Context) ([]*Container, []string, error)) ([]*Container, []string, error) {
	type result struct {
		cs  []*Container
		nss []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		cs, nss, err := f(ctx)
		done <- result{cs, nss, err}
	}()
	select {
	case r := <-done:
		return r.cs, r.nss, r.err
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("no answer within the timeout: %w", ctx.Err())
	}
}
