// Package attrib maps a cgroup path to the workload it belongs to.
//
// When a kernel limit runs out (pids, memory cgroup ids, inotify watches,
// keys...), the holders found are processes; an operator needs the
// container, pod or systemd unit behind them. A process's cgroup path says
// that without asking any daemon: container runtimes and the kubelet name
// their cgroups after the container id and pod uid, in a few well-known
// shapes per runtime and cgroup driver:
//
//	/docker/<id>                                  docker, cgroupfs driver
//	/system.slice/docker-<id>.scope               docker, systemd driver
//	/kubepods/burstable/pod<uid>/<id>             kubelet, cgroupfs driver
//	/kubepods.slice/kubepods-burstable.slice/
//	  kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
//	                                              kubelet, systemd driver
//	/machine.slice/libpod-<id>.scope              podman
//	/lxc.payload.<name>                           lxc, lxd
//	/<namespace>/<id>                             containerd default (ctr)
//
// This file only parses strings: reading /proc/PID/cgroup and confirming an
// id against a runtime's inventory is the caller's business. The parser is
// total: any input gives a Ref, holding only what the shape makes certain.
package attrib

import (
	"strings"
	"unicode/utf8"
)

// Ref is what a cgroup path says about the workload in it.
type Ref struct {
	Runtime   string // "docker", "containerd", "cri-containerd", "cri-o", "podman", "lxc", or "" when the path names a container id but not which runtime made it (e.g. kubepods cgroupfs leaf "/kubepods/burstable/pod<uid>/<64hex>", or "<parent>/<64hex>" with docker --cgroup-parent)
	ID        string // full container id, lowercase; "" when the path is not a container's
	Namespace string // containerd namespace, only for the plain containerd shape "/<ns>/<id>"
	Guess     bool   // true when the shape is ambiguous and only an inventory can confirm it (plain containerd "/<ns>/<id>")
	PodUID    string // Kubernetes pod uid with dashes (the systemd driver writes underscores: convert), "" if not under kubepods
	QoS       string // "guaranteed", "burstable", "besteffort" for kubepods paths ("guaranteed" when the pod sits directly under kubepods)
	Unit      string // systemd unit of the innermost *.service or *.scope component, e.g. "docker.service", "session-3.scope", "docker-<id>.scope"
	Conmon    bool   // the path is a runtime's monitor (crio-conmon-<id>.scope, libpod-conmon-<id>.scope), not the container itself
}

// scopePrefixes are the unit-name prefixes runtimes give a container's
// cgroup, "<prefix><64hex>" with ".scope" under the systemd driver (runc
// builds "<prefix>-<name>.scope" from a "slice:prefix:name" cgroupsPath) and
// without it under cgroupfs (cri-o "crio-<id>", podman "libpod-<id>").
// Conmon prefixes come before the prefixes they extend.
var scopePrefixes = []struct {
	prefix, runtime string
	conmon          bool
}{
	{"docker-", "docker", false},
	{"cri-containerd-", "cri-containerd", false},
	{"crio-conmon-", "cri-o", true},
	{"crio-", "cri-o", false},
	{"libpod-conmon-", "podman", true},
	{"libpod-", "podman", false},
	{"nerdctl-", "containerd", false},
}

// notNamespaces are first components of two-component paths that are not a
// containerd namespace: "/docker/buildkit", "/kubepods/burstable",
// "/kubelet/kubepods", "/libpod_parent/conmon", libvirt's
// "/machine/<vm>.libvirt-qemu", ECS's "/ecs/<task>", cgmanager's
// "/user/1000.user".
var notNamespaces = map[string]bool{
	"docker": true, "kubepods": true, "kubelet": true, "lxc": true,
	"libpod_parent": true, "machine": true, "ecs": true, "user": true,
}

// knownNamespaces are containerd namespaces in common use (ctr and nerdctl
// "default", CRI "k8s.io", dockerd "moby", buildkit). Under any other parent,
// "/<parent>/<64hex>" is taken for docker --cgroup-parent rather than a
// containerd namespace.
var knownNamespaces = map[string]bool{
	"default": true, "k8s.io": true, "moby": true, "buildkit": true,
}

// ParseCgroupPath parses one cgroup path. It never panics; unknown shapes give a Ref with only what is certain (maybe Unit), or the zero Ref.
func ParseCgroupPath(path string) Ref {
	// cgroup v2 appends " (deleted)" in /proc/PID/cgroup once a zombie's
	// cgroup is removed (proc_cgroup_show).
	path = strings.TrimSuffix(path, " (deleted)")
	var comps []string
	for _, c := range strings.Split(path, "/") {
		if c != "" {
			comps = append(comps, c)
		}
	}

	var r Ref
	var p parser
	for i, c := range comps {
		prev := ""
		if i > 0 {
			prev = comps[i-1]
		}
		p.component(&r, prev, c)
	}

	if len(comps) == 2 && r.Runtime == "" && r.PodUID == "" && r.QoS == "" &&
		(r.ID == "" || knownNamespaces[comps[0]]) && plainContainerd(comps[0], comps[1]) {
		id := comps[1]
		if isHexID(id) {
			id = strings.ToLower(id)
		}
		r = Ref{Runtime: "containerd", Namespace: comps[0], ID: id, Guess: true}
	}
	return r
}

// parser carries, from one component to the next, where the walk stands in
// a kubelet cgroupfs hierarchy: kubepods, then an optional QoS class, then
// pod<uid>. systemd slice names repeat their ancestors, so each kubepods
// slice carries the whole chain by itself.
type parser struct {
	want int // 0: outside; 1: after kubepods; 2: after a QoS class
}

// component folds one path component into r; deeper components override
// shallower ones, so the innermost workload wins.
func (p *parser) component(r *Ref, prev, c string) {
	if !printable(c) {
		p.want = 0
		return
	}
	if isUnit(c) {
		r.Unit = c
	}
	// runc's fs driver given a systemd "slice:prefix:name" cgroupsPath (a
	// kubelet/containerd driver mismatch) makes it one directory:
	// /system.slice/containerd.service/kubepods-burstable-pod<uid>.slice:cri-containerd:<id>
	if slice, rest, ok := strings.Cut(c, ":"); ok {
		p.want = 0
		if prefix, name, ok := strings.Cut(rest, ":"); ok {
			p.kubeSlice(r, slice)
			if runtime, id, conmon, ok := scoped(prefix + "-" + name); ok {
				setContainer(r, runtime, id, conmon)
			}
		}
		return
	}
	if p.kubeSlice(r, c) {
		return
	}
	if p.want > 0 && p.kubeToken(r, c) {
		return
	}
	p.want = 0
	container(r, prev, c)
}

// kubeSlice handles a kubelet systemd slice ("kubepods-burstable-pod<uid_>.slice",
// or "kubelet-kubepods.slice" under --cgroup-root=/kubelet) and the cgroupfs
// root "kubepods"; it reports whether c was one.
func (p *parser) kubeSlice(r *Ref, c string) bool {
	if c == "kubepods" {
		p.kubeToken(r, c)
		return true
	}
	name, ok := strings.CutSuffix(c, ".slice")
	if !ok {
		return false
	}
	fields := strings.Split(name, "-")
	start := -1
	for i, f := range fields {
		if f == "kubepods" {
			start = i
		}
	}
	if start < 0 {
		return false
	}
	for _, f := range fields[start:] {
		if !p.kubeToken(r, f) {
			break
		}
	}
	return true
}

// kubeToken applies one element of a kubelet cgroup name. "kubepods" starts
// a new pod hierarchy: whatever an outer path said (a kind or minikube node
// container) no longer describes the workload.
func (p *parser) kubeToken(r *Ref, t string) bool {
	switch {
	case t == "kubepods":
		*r = Ref{Unit: r.Unit}
		p.want = 1
	case p.want == 1 && (t == "burstable" || t == "besteffort"):
		r.QoS = t
		p.want = 2
	case p.want > 0 && strings.HasPrefix(t, "pod") && isPodUID(t[3:]):
		r.PodUID = strings.ReplaceAll(t[3:], "_", "-")
		if r.QoS == "" {
			r.QoS = "guaranteed"
		}
		p.want = 0
	default:
		return false
	}
	return true
}

// container recognises a container's own cgroup in c, whose parent
// component is prev.
func container(r *Ref, prev, c string) {
	// lxc 4+: lxc.payload.<name>, lxc.monitor.<name>; older: /lxc/<name>.
	if name, ok := strings.CutPrefix(c, "lxc.payload."); ok && lxcName(name) {
		setContainer(r, "lxc", name, false)
	} else if name, ok := strings.CutPrefix(c, "lxc.monitor."); ok && lxcName(name) {
		setContainer(r, "lxc", name, true)
	} else if (prev == "lxc" || prev == "lxc.payload") && lxcName(c) {
		setContainer(r, "lxc", c, false)
	} else if runtime, id, conmon, ok := scoped(c); ok {
		setContainer(r, runtime, id, conmon)
	} else if isHexID(c) {
		runtime := ""
		if prev == "docker" {
			runtime = "docker"
		}
		setContainer(r, runtime, strings.ToLower(c), false)
	}
}

// scoped matches "<prefix><64hex>[.scope]" against scopePrefixes.
func scoped(c string) (runtime, id string, conmon, ok bool) {
	unit := strings.TrimSuffix(c, ".scope")
	for _, s := range scopePrefixes {
		if id, ok := strings.CutPrefix(unit, s.prefix); ok && isHexID(id) {
			return s.runtime, strings.ToLower(id), s.conmon, true
		}
	}
	return "", "", false, false
}

func setContainer(r *Ref, runtime, id string, conmon bool) {
	r.Runtime, r.ID, r.Conmon = runtime, id, conmon
	r.Namespace, r.Guess = "", false
}

// isUnit reports whether c names a systemd service or scope.
func isUnit(c string) bool {
	for _, suffix := range []string{".service", ".scope"} {
		if len(c) > len(suffix) && strings.HasSuffix(c, suffix) {
			return true
		}
	}
	return false
}

// plainContainerd reports whether ns/id can be containerd's default
// cgroupsPath "/<namespace>/<id>": two containerd identifiers, neither a
// systemd unit, under a parent known to mean something else.
func plainContainerd(ns, id string) bool {
	for _, c := range []string{ns, id} {
		if strings.HasSuffix(c, ".slice") || strings.HasSuffix(c, ".scope") || strings.HasSuffix(c, ".service") {
			return false
		}
	}
	return !notNamespaces[ns] && isIdentifier(ns) && isIdentifier(id)
}

// isIdentifier reports whether s is a containerd identifier: at most 76
// letters, digits and inner '.', '_', '-'.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 76 || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// isHexID reports whether s is exactly 64 hex digits, either case.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// isPodUID reports whether s can be a pod uid as the kubelet writes it: a
// UUID (dashes, or underscores under the systemd driver) or a static pod's
// 32-hex hash.
func isPodUID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' {
			return false
		}
	}
	return true
}

// lxcName reports whether s can be an lxc container name.
func lxcName(s string) bool {
	return s != "" && utf8.ValidString(s)
}

// printable reports whether c has no control characters; a component with
// them is no runtime's and is ignored.
func printable(c string) bool {
	for i := 0; i < len(c); i++ {
		if c[i] < 0x20 || c[i] == 0x7f {
			return false
		}
	}
	return true
}

// ParseProcCgroup parses the content of /proc/PID/cgroup (lines "hierarchy-ID:controller-list:path") and returns the most specific Ref over all lines: prefer a line that yields a container ID; among those prefer the v2 line ("0::") then memory, pids, then any; if no line has an ID return the best Ref with a PodUID or Unit. Malformed lines are skipped.
func ParseProcCgroup(content string) Ref {
	var best Ref
	bestScore := 0
	for _, line := range strings.Split(content, "\n") {
		hier, rest, ok := strings.Cut(line, ":")
		if !ok || !isDigits(hier) {
			continue
		}
		controllers, path, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(path, "/") {
			continue
		}
		r := ParseCgroupPath(path)
		// Kind of Ref first, then which hierarchy said it.
		var score int
		switch {
		case r.ID != "" && !r.Guess:
			score = 40
		case r.ID != "":
			score = 30
		case r.PodUID != "":
			score = 20
		case r.Unit != "":
			score = 10
		default:
			continue
		}
		score += hierarchyRank(hier, controllers)
		if score > bestScore {
			best, bestScore = r, score
		}
	}
	return best
}

// hierarchyRank orders the lines of /proc/PID/cgroup: the v2 line, then the
// v1 memory and pids hierarchies, where runtimes always place a container.
func hierarchyRank(hier, controllers string) int {
	if hier == "0" && controllers == "" {
		return 4
	}
	rank := 1
	for _, c := range strings.Split(controllers, ",") {
		switch c {
		case "memory":
			return 3
		case "pids":
			rank = 2
		}
	}
	return rank
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ShortID returns the first 12 characters of a 64-hex id, else the id unchanged.
func ShortID(id string) string {
	if isHexID(id) {
		return id[:12]
	}
	return id
}
