package churn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// ContainerdOptions say which containerd churn drives and how.
type ContainerdOptions struct {
	// Address is containerd's socket.
	Address string
	// Namespace is the containerd namespace churn works in. churn creates
	// it (labelled as its own) and removes it at the end; a namespace
	// that exists without churn's label is refused, so that churn never
	// works among containers it did not create.
	Namespace string
	// Snapshotter for the containers' root filesystems ("" overlayfs).
	Snapshotter string
	// RuncRoot is the runc state directory the shim is given ("" the
	// shim's default, /run/containerd/runc/<namespace>).
	RuncRoot string
	// FifoDir is where the client makes each task's fifo directory, as
	// ctr's --fifo-dir ("" /run/containerd/fifo).
	FifoDir string
	// State and Root are containerd's state and root directories (host
	// paths), whose files churn counts, and which the leak.fifo limit
	// reads for live tasks ("" /run/containerd, /var/lib/containerd).
	State, Root string
	// ImageTar, when set, is an image archive (OCI layout or docker save)
	// imported into the namespace before the loop; otherwise Image is
	// pulled into it.
	ImageTar string
}

func (o *ContainerdOptions) defaults() {
	if o.Address == "" {
		o.Address = "/run/containerd/containerd.sock"
	}
	if o.Namespace == "" {
		o.Namespace = "enospc-churn"
	}
	if o.Snapshotter == "" {
		o.Snapshotter = "overlayfs"
	}
	if o.FifoDir == "" {
		o.FifoDir = "/run/containerd/fifo"
	}
	if o.State == "" {
		o.State = "/run/containerd"
	}
	if o.Root == "" {
		o.Root = "/var/lib/containerd"
	}
}

// containerdDriver drives containerd through its Go client the way ctr
// does: `ctr run -d` makes a fifo directory per task and leaves it when
// it exits; `ctr task pause|resume|kill` load the task without IO;
// `ctr container delete` loads the task with its fifos (cio.Load), deletes
// it, which removes them, then the container and its snapshot. Each step
// is one such call, so that the path of containerd#2421 is the one taken.
type containerdDriver struct {
	opts  ContainerdOptions
	image string
	args  []string
	run   string // the run's label value
	h     *host.Host

	cli *containerd.Client
	img containerd.Image
	fp  *footprint

	// killed are the containers whose shim the fault killed: containerd
	// 1.6 leaves each one's socket in ShimSocketDir, and churn removes
	// them at the end (its cleanup cannot find them later: a socket is
	// named by a hash).
	mu     sync.Mutex
	killed []string
}

// ShimSocketDir is where containerd (1.6, 1.7) puts its shims' sockets,
// whatever its configured state directory: defaults.DefaultStateDir + "/s".
const ShimSocketDir = "/run/containerd/s"

// shimSocket is the socket of the shim of task id: containerd's
// shim.SocketAddress, sha256 of <grpc address>/<namespace>/<id>.
func (d *containerdDriver) shimSocket(id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(d.opts.Address, d.opts.Namespace, id)))
	return d.h.RootPath(filepath.Join(ShimSocketDir, hex.EncodeToString(sum[:])))
}

// Labels churn puts on what it creates.
const (
	LabelChurn = "io.enospc.churn"     // on the namespace and every container: "true"
	LabelRun   = "io.enospc.churn.run" // on every container: the run's id
)

func newContainerdDriver(h *host.Host, o Options) *containerdDriver {
	co := o.Containerd
	co.defaults()
	return &containerdDriver{opts: co, image: o.Image, args: o.Args, run: o.runID, h: h}
}

func (d *containerdDriver) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.opts.Namespace)
}

func (d *containerdDriver) connect(ctx context.Context) error {
	cli, err := containerd.New(d.opts.Address, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", d.opts.Address, err)
	}
	if _, err := cli.Version(ctx); err != nil {
		cli.Close()
		return fmt.Errorf("containerd at %s does not answer: %w", d.opts.Address, err)
	}
	d.cli = cli
	return nil
}

// claim creates churn's namespace, or takes it over when an earlier run
// of churn made it (its label says so); a namespace of anyone else is
// refused.
func (d *containerdDriver) claim(ctx context.Context) error {
	ns := d.cli.NamespaceService()
	exists, err := namespaceExists(ctx, ns, d.opts.Namespace)
	if err != nil {
		return err
	}
	if !exists {
		if err := ns.Create(d.ctx(ctx), d.opts.Namespace, map[string]string{LabelChurn: "true"}); err != nil {
			return fmt.Errorf("create namespace %s: %w", d.opts.Namespace, err)
		}
		return nil
	}
	labels, err := ns.Labels(ctx, d.opts.Namespace)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", d.opts.Namespace, err)
	}
	if labels[LabelChurn] != "true" {
		return fmt.Errorf("containerd namespace %s exists and was not made by churn (no %s label): choose another namespace", d.opts.Namespace, LabelChurn)
	}
	return nil
}

func (d *containerdDriver) prepare(ctx context.Context) error {
	if err := d.connect(ctx); err != nil {
		return err
	}
	if err := d.claim(ctx); err != nil {
		return err
	}
	ctx = d.ctx(ctx)
	if d.opts.ImageTar != "" {
		f, err := os.Open(d.opts.ImageTar)
		if err != nil {
			return fmt.Errorf("image archive: %w", err)
		}
		defer f.Close()
		imgs, err := d.cli.Import(ctx, f)
		if err != nil {
			return fmt.Errorf("import %s: %w", d.opts.ImageTar, err)
		}
		if d.image == "" && len(imgs) > 0 {
			d.image = imgs[0].Name
		}
	}
	if d.image == "" {
		return errors.New("no image: give one, or an image archive to import")
	}
	img, err := d.cli.GetImage(ctx, d.image)
	if errdefs.IsNotFound(err) {
		img, err = d.cli.Pull(ctx, d.image, containerd.WithPullUnpack, containerd.WithPullSnapshotter(d.opts.Snapshotter))
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", d.image, err)
	}
	if ok, err := img.IsUnpacked(ctx, d.opts.Snapshotter); err != nil || !ok {
		if err := img.Unpack(ctx, d.opts.Snapshotter); err != nil {
			return fmt.Errorf("unpack %s for %s: %w", d.image, d.opts.Snapshotter, err)
		}
	}
	d.img = img
	d.fp = newContainerdFootprint(d.h, d.opts)
	return nil
}

func (d *containerdDriver) checkOptions(o *check.Options) {
	o.ContainerdState, o.FifoDir = d.opts.State, d.opts.FifoDir
}

func (d *containerdDriver) task(ctx context.Context, id string, attach cio.Attach) (containerd.Task, error) {
	c, err := d.cli.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Task(ctx, attach)
}

func (d *containerdDriver) step(ctx context.Context, id, step string) error {
	ctx = d.ctx(ctx)
	switch step {
	case StepRun:
		return d.runTask(ctx, id)
	case StepPause:
		t, err := d.task(ctx, id, nil)
		if err != nil {
			return err
		}
		return t.Pause(ctx)
	case StepResume:
		t, err := d.task(ctx, id, nil)
		if err != nil {
			return err
		}
		return t.Resume(ctx)
	case StepKill:
		t, err := d.task(ctx, id, nil)
		if err != nil {
			return err
		}
		return t.Kill(ctx, syscall.SIGKILL)
	case StepKillShim:
		return d.killShim(ctx, id)
	case StepDelete:
		return d.deleteContainer(ctx, id)
	}
	return fmt.Errorf("step %q: containerd has no such step", step)
}

// runTask is `ctr run -d`: the container, its task with stdio through
// fifos in a fresh directory under the fifo dir, started, and the
// client's ends of the fifos closed as ctr's exit closes them. A retry
// goes on from where the failed attempt stopped.
func (d *containerdDriver) runTask(ctx context.Context, id string) error {
	c, err := d.cli.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		var rtOpts any
		if d.opts.RuncRoot != "" {
			rtOpts = &options.Options{Root: d.opts.RuncRoot}
		}
		specOpts := []oci.SpecOpts{oci.WithImageConfig(d.img)}
		if len(d.args) > 0 {
			specOpts = append(specOpts, oci.WithProcessArgs(d.args...))
		}
		c, err = d.cli.NewContainer(ctx, id,
			containerd.WithContainerLabels(map[string]string{LabelChurn: "true", LabelRun: d.run}),
			containerd.WithImage(d.img),
			containerd.WithSnapshotter(d.opts.Snapshotter),
			containerd.WithNewSnapshot(id, d.img),
			containerd.WithRuntime("io.containerd.runc.v2", rtOpts),
			containerd.WithNewSpec(specOpts...))
	}
	if err != nil {
		return err
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		t, err = c.NewTask(ctx, cio.NewCreator(cio.WithFIFODir(d.opts.FifoDir), cio.WithStreams(strings.NewReader(""), io.Discard, io.Discard)))
		if err == nil {
			// ctr run -d exits here: its ends of the fifos close, the
			// directory stays for whoever deletes the task.
			t.IO().Cancel()
		}
	}
	if err != nil {
		return err
	}
	st, err := t.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status == containerd.Created {
		return t.Start(ctx)
	}
	return nil
}

// deleteContainer is `ctr container delete`: a task that is stopped (or
// created) is deleted with its fifos loaded, so that the client removes
// them; a running one is refused, as ctr refuses it ("cannot delete a non
// stopped container"), and the step is retried; then the container and
// its snapshot.
func (d *containerdDriver) deleteContainer(ctx context.Context, id string) error {
	c, err := d.cli.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	t, err := c.Task(ctx, cio.Load)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return err
	default:
		st, err := t.Status(ctx)
		if err != nil {
			return err
		}
		if st.Status != containerd.Stopped && st.Status != containerd.Created {
			return fmt.Errorf("cannot delete a non stopped container: %s", st.Status)
		}
		if _, err := t.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return c.Delete(ctx, containerd.WithSnapshotCleanup)
}

// killShim SIGKILLs the task's shim, as a crashed or OOM-killed shim
// dies, and waits (bounded) until containerd has reaped the task.
func (d *containerdDriver) killShim(ctx context.Context, id string) error {
	pids := shimPIDs(d.h, d.opts.Address, d.opts.Namespace, id)
	if len(pids) != 1 {
		return fmt.Errorf("want one shim of %s, found %d", id, len(pids))
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill shim %d: %w", pids[0], err)
	}
	d.mu.Lock()
	d.killed = append(d.killed, id)
	d.mu.Unlock()
	// containerd drops the task from its list before the cleanup of the
	// dead shim (a `shim delete` of its own) has removed the task's
	// bundle: the cycle goes on when both are gone.
	bundle := d.h.RootPath(filepath.Join(d.opts.State, "io.containerd.runtime.v2.task", d.opts.Namespace, id))
	end := time.Now().Add(30 * time.Second)
	for {
		_, err := d.task(ctx, id, nil)
		if _, serr := os.Stat(bundle); errdefs.IsNotFound(err) && os.IsNotExist(serr) {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("containerd still has the task of %s 30s after its shim died", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// remove takes one of churn's containers away whatever state it is in:
// its task killed and deleted, the container and its snapshot deleted.
func (d *containerdDriver) remove(ctx context.Context, id string) error {
	ctx = d.ctx(ctx)
	c, err := d.cli.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if info, err := c.Info(ctx); err != nil || info.Labels[LabelChurn] != "true" {
		return fmt.Errorf("container %s is not churn's: left alone", id)
	}
	if t, err := c.Task(ctx, cio.Load); err == nil {
		if st, err := t.Status(ctx); err == nil && st.Status == containerd.Paused {
			t.Resume(ctx)
		}
		t.Kill(ctx, syscall.SIGKILL)
		end := time.Now().Add(10 * time.Second)
		for {
			_, err := t.Delete(ctx)
			if err == nil || errdefs.IsNotFound(err) || time.Now().After(end) || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// cleanup removes every container labelled as churn's in the namespace,
// the images churn brought into it, and the namespace when churn made it
// and it is left empty. Containers without churn's label are never
// touched (there are none in a namespace churn made, unless someone put
// them there).
func (d *containerdDriver) cleanup(ctx context.Context) error {
	if d.cli == nil {
		if err := d.connect(ctx); err != nil {
			return err
		}
	}
	ns := d.cli.NamespaceService()
	exists, err := namespaceExists(ctx, ns, d.opts.Namespace)
	if err != nil || !exists {
		return err
	}
	labels, err := ns.Labels(ctx, d.opts.Namespace)
	if err != nil {
		return err
	}
	if labels[LabelChurn] != "true" {
		return fmt.Errorf("containerd namespace %s was not made by churn: left alone", d.opts.Namespace)
	}
	nctx := d.ctx(ctx)
	cs, err := d.cli.Containers(nctx, fmt.Sprintf("labels.%q==true", LabelChurn))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := d.remove(ctx, c.ID()); err != nil {
			errs = append(errs, err)
		}
	}
	if rest, err := d.cli.Containers(nctx); err == nil && len(rest) > 0 {
		errs = append(errs, fmt.Errorf("namespace %s holds %d containers that are not churn's: namespace kept", d.opts.Namespace, len(rest)))
		return errors.Join(errs...)
	}
	is := d.cli.ImageService()
	if imgs, err := is.List(nctx); err == nil {
		for _, img := range imgs {
			if err := is.Delete(nctx, img.Name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("image %s: %w", img.Name, err))
			}
		}
	}
	// Leases and content of the namespace go with it; containerd's
	// garbage collector removes the blobs and snapshots no one refers to.
	if err := ns.Delete(d.ctx(ctx), d.opts.Namespace); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("remove namespace %s: %w", d.opts.Namespace, err))
	} else {
		// runc made /<namespace> in every hierarchy as the parent of the
		// containers' cgroups (containerd's default spec), and nothing
		// removes it with the namespace. rmdir removes an empty one only.
		for _, root := range cgroupRoots(d.h) {
			os.Remove(filepath.Join(root, d.opts.Namespace))
		}
	}
	return errors.Join(errs...)
}

func (d *containerdDriver) leftovers() int {
	return len(churnFifoDirs(d.h.RootPath(d.opts.FifoDir)))
}

// removeShimSockets removes the sockets the killed shims left, once their
// tasks are gone; it returns how many there were.
func (d *containerdDriver) removeShimSockets() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	var errs []error
	for _, id := range d.killed {
		p := d.shimSocket(id)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode().Type() != fs.ModeSocket {
			continue
		}
		n++
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	d.killed = nil
	return n, errors.Join(errs...)
}

func (d *containerdDriver) removeLeftovers() error { return d.removeFifoDirs() }

func (d *containerdDriver) footprint(ctx context.Context) []Reading {
	if d.fp == nil {
		return nil
	}
	return d.fp.read(ctx)
}

func (d *containerdDriver) close() {
	if d.cli != nil {
		d.cli.Close()
	}
}

// churnFifoDirs lists the directories under the fifo dir that churn's
// client made and left: every entry a fifo named for one of churn's
// containers (IDPrefix...-stdin, -stdout, -stderr). A directory holding
// anything else is not churn's and is never listed.
func churnFifoDirs(fifoDir string) []string {
	ents, err := os.ReadDir(fifoDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(fifoDir, e.Name())
		files, err := os.ReadDir(dir)
		if err != nil || len(files) == 0 {
			continue
		}
		ours := true
		for _, f := range files {
			name := f.Name()
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "-stdin"), "-stdout"), "-stderr")
			if f.Type() != fs.ModeNamedPipe || base == name || !strings.HasPrefix(base, IDPrefix) {
				ours = false
				break
			}
		}
		if ours {
			out = append(out, dir)
		}
	}
	return out
}

// removeFifoDirs removes the fifo directories churn's client left (the
// leak a kill-shim run measures), once no container of churn's remains.
func (d *containerdDriver) removeFifoDirs() error {
	var errs []error
	for _, dir := range churnFifoDirs(d.h.RootPath(d.opts.FifoDir)) {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if f.Type() == fs.ModeNamedPipe {
				os.Remove(filepath.Join(dir, f.Name()))
			}
		}
		if err := os.Remove(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// namespaceExists asks containerd's list: Labels answers for a
// namespace that does not exist as for one without labels.
func namespaceExists(ctx context.Context, ns namespaces.Store, name string) (bool, error) {
	all, err := ns.List(ctx)
	if err != nil {
		return false, fmt.Errorf("list namespaces: %w", err)
	}
	return slices.Contains(all, name), nil
}

// shimPIDs are the containerd shims serving task id of namespace ns for
// the containerd at address: those whose command line says so.
func shimPIDs(h *host.Host, address, ns, id string) []int {
	var out []int
	for _, p := range shims(h) {
		if p.arg("-address") == address && p.arg("-namespace") == ns && (id == "" || p.arg("-id") == id) {
			out = append(out, p.pid)
		}
	}
	return out
}

// shimProc is a containerd shim process and its arguments.
type shimProc struct {
	pid  int
	args []string
}

func (p shimProc) arg(name string) string {
	for i := 0; i+1 < len(p.args); i++ {
		if p.args[i] == name {
			return p.args[i+1]
		}
	}
	return ""
}

// shimScan finds containerd's shims among the processes. Processes seen
// not to be a shim are remembered by pid and not read again while they
// live: a sample reads the comm of the processes new since the last one,
// not of every process of the host. A shim is a fresh process (containerd
// forks it, it forks itself again as the daemon), never an old pid that
// became one, and no create is in flight at a sample.
type shimScan struct {
	mu       sync.Mutex
	notShims map[int]bool
}

var shimScans sync.Map // procfs root -> *shimScan

// shims lists the containerd shim processes.
func shims(h *host.Host) []shimProc {
	v, _ := shimScans.LoadOrStore(h.Proc, &shimScan{notShims: map[int]bool{}})
	sc := v.(*shimScan)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	ents, err := os.ReadDir(h.Proc)
	if err != nil {
		return nil
	}
	var out []shimProc
	seen := make(map[int]bool, len(ents))
	for _, e := range ents {
		pid, ok := pidName(e.Name())
		if !ok {
			continue
		}
		seen[pid] = true
		if sc.notShims[pid] {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(h.Proc, e.Name(), "comm"))
		if err != nil {
			continue
		}
		if !strings.HasPrefix(string(comm), "containerd-shim") {
			sc.notShims[pid] = true
			continue
		}
		b, err := os.ReadFile(filepath.Join(h.Proc, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		out = append(out, shimProc{pid: pid, args: strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")})
	}
	for pid := range sc.notShims {
		if !seen[pid] {
			delete(sc.notShims, pid)
		}
	}
	return out
}
