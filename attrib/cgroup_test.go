package attrib

import (
	"strings"
	"testing"
)

// Container ids are 64 hex digits; pod uids are UUIDs, written with
// underscores in systemd slice names.
const (
	id1  = "0a6bf86d3fa65004bf71a78a61e6176ef28ad41491e35dcb8180b4fb9672d055"
	id2  = "d35b1bee137e39b6f13a097562a45ff92c706a47ef515fe5b8fa6046f269333f"
	id3  = "9069d2823de5c484b6d284ac51bd03fc99e1daaa3bbb70981956e5b28d68a4df"
	uid  = "9142b7ed-7b88-407a-91f4-6651eabdd196"
	uid_ = "9142b7ed_7b88_407a_91f4_6651eabdd196"
	// A static (mirror) pod's uid is the 32-hex hash of its manifest.
	staticUID = "89f4f2cb511c3b0b7e5272cff5ec37bf"
)

// parseCases are real cgroup paths, one per shape; fuzzing starts from them.
var parseCases = []struct {
	name, path string
	want       Ref
}{
	// docker, cgroupfs driver, cgroup v1 (every controller) and v2.
	{"docker cgroupfs", "/docker/" + id1, Ref{Runtime: "docker", ID: id1}},
	// docker-in-docker, cgroupfs driver both levels: the innermost container.
	{"docker in docker", "/docker/" + id1 + "/docker/" + id2, Ref{Runtime: "docker", ID: id2}},
	// docker, systemd driver, v1 or v2.
	{"docker systemd", "/system.slice/docker-" + id1 + ".scope", Ref{Runtime: "docker", ID: id1, Unit: "docker-" + id1 + ".scope"}},
	// rootless docker, systemd driver, v2 (user manager's slice).
	{"docker rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + id1 + ".scope",
		Ref{Runtime: "docker", ID: id1, Unit: "docker-" + id1 + ".scope"}},
	// docker --cgroup-parent=/ci, cgroupfs driver: the id, not who made it.
	{"docker cgroup-parent", "/ci/" + id1, Ref{ID: id1}},
	// docker, cgroupfs driver, id written in upper case (hand-made tree): lowercased.
	{"docker uppercase id", "/docker/" + strings.ToUpper(id1), Ref{Runtime: "docker", ID: id1}},
	// docker, cgroupfs driver, seen from inside another cgroup namespace.
	{"docker outside cgroupns", "/../../docker/" + id1, Ref{Runtime: "docker", ID: id1}},
	// docker cgroupfs, path relative to the hierarchy root (a directory walk).
	{"docker relative", "docker/" + id1, Ref{Runtime: "docker", ID: id1}},
	// cgroup v2 /proc/PID/cgroup of a zombie whose cgroup was removed.
	{"v2 deleted", "/system.slice/docker-" + id1 + ".scope (deleted)", Ref{Runtime: "docker", ID: id1, Unit: "docker-" + id1 + ".scope"}},

	// containerd default spec (ctr run), cgroupfs: "/<namespace>/<id>".
	{"containerd ctr", "/default/redis-server", Ref{Runtime: "containerd", Namespace: "default", ID: "redis-server", Guess: true}},
	// containerd default spec, another namespace and a dotted id.
	{"containerd namespace", "/build/job_1.step-2", Ref{Runtime: "containerd", Namespace: "build", ID: "job_1.step-2", Guess: true}},
	// nerdctl, cgroupfs driver (v1 default): "/default/<64hex>".
	{"nerdctl cgroupfs", "/default/" + id1, Ref{Runtime: "containerd", Namespace: "default", ID: id1, Guess: true}},
	// nerdctl -n k8s.io, cgroupfs driver.
	{"nerdctl k8s.io", "/k8s.io/" + id1, Ref{Runtime: "containerd", Namespace: "k8s.io", ID: id1, Guess: true}},
	// nerdctl, systemd driver (v2 default): "system.slice:nerdctl:<id>".
	{"nerdctl systemd", "/system.slice/nerdctl-" + id1 + ".scope", Ref{Runtime: "containerd", ID: id1, Unit: "nerdctl-" + id1 + ".scope"}},

	// kubelet cgroupfs driver, Guaranteed pod, docker or containerd leaf.
	{"kube cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + id1, Ref{ID: id1, PodUID: uid, QoS: "guaranteed"}},
	// kubelet cgroupfs driver, Burstable pod.
	{"kube cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + id1, Ref{ID: id1, PodUID: uid, QoS: "burstable"}},
	// kubelet cgroupfs driver, BestEffort pod.
	{"kube cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + id1, Ref{ID: id1, PodUID: uid, QoS: "besteffort"}},
	// kubelet cgroupfs driver, static pod (uid is a hash).
	{"kube cgroupfs static pod", "/kubepods/burstable/pod" + staticUID + "/" + id1, Ref{ID: id1, PodUID: staticUID, QoS: "burstable"}},
	// kubelet cgroupfs driver, the pod cgroup itself.
	{"kube cgroupfs pod only", "/kubepods/burstable/pod" + uid, Ref{PodUID: uid, QoS: "burstable"}},
	// kubelet cgroupfs driver, a QoS class cgroup.
	{"kube cgroupfs qos only", "/kubepods/besteffort", Ref{QoS: "besteffort"}},
	// kubelet --cgroup-root=/kubelet, cgroupfs driver.
	{"kube cgroup-root cgroupfs", "/kubelet/kubepods/besteffort/pod" + uid + "/" + id1, Ref{ID: id1, PodUID: uid, QoS: "besteffort"}},
	// kubelet + containerd, systemd driver, Guaranteed pod, v1 or v2.
	{"kube systemd containerd guaranteed", "/kubepods.slice/kubepods-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope",
		Ref{Runtime: "cri-containerd", ID: id1, PodUID: uid, QoS: "guaranteed", Unit: "cri-containerd-" + id1 + ".scope"}},
	// kubelet + cri-o, systemd driver, Burstable pod.
	{"kube systemd crio burstable", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/crio-" + id1 + ".scope",
		Ref{Runtime: "cri-o", ID: id1, PodUID: uid, QoS: "burstable", Unit: "crio-" + id1 + ".scope"}},
	// kubelet + cri-dockerd (or dockershim), systemd driver, BestEffort pod.
	{"kube systemd docker besteffort", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid_ + ".slice/docker-" + id1 + ".scope",
		Ref{Runtime: "docker", ID: id1, PodUID: uid, QoS: "besteffort", Unit: "docker-" + id1 + ".scope"}},
	// cri-o, systemd driver, conmon_cgroup = "pod": the monitor beside the container.
	{"kube systemd crio conmon", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/crio-conmon-" + id1 + ".scope",
		Ref{Runtime: "cri-o", ID: id1, PodUID: uid, QoS: "burstable", Unit: "crio-conmon-" + id1 + ".scope", Conmon: true}},
	// cri-o, systemd driver, conmon_cgroup = "system.slice".
	{"crio conmon system.slice", "/system.slice/crio-conmon-" + id1 + ".scope", Ref{Runtime: "cri-o", ID: id1, Unit: "crio-conmon-" + id1 + ".scope", Conmon: true}},
	// cri-o + crun, systemd driver, v2: crun's "container" sub-cgroup.
	{"kube systemd crio crun container", "/kubepods.slice/kubepods-pod" + uid_ + ".slice/crio-" + id1 + ".scope/container",
		Ref{Runtime: "cri-o", ID: id1, PodUID: uid, QoS: "guaranteed", Unit: "crio-" + id1 + ".scope"}},
	// kubelet systemd driver, the pod slice itself.
	{"kube systemd pod only", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid_ + ".slice",
		Ref{PodUID: uid, QoS: "besteffort"}},
	// kubelet systemd driver, static pod.
	{"kube systemd static pod", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + staticUID + ".slice/cri-containerd-" + id1 + ".scope",
		Ref{Runtime: "cri-containerd", ID: id1, PodUID: staticUID, QoS: "burstable", Unit: "cri-containerd-" + id1 + ".scope"}},
	// kubelet systemd driver, a QoS class slice.
	{"kube systemd qos only", "/kubepods.slice/kubepods-burstable.slice", Ref{QoS: "burstable"}},
	// kind node: kubelet --cgroup-root=/kubelet, systemd driver, containerd.
	{"kind", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope",
		Ref{Runtime: "cri-containerd", ID: id1, PodUID: uid, QoS: "besteffort", Unit: "cri-containerd-" + id1 + ".scope"}},
	// kind node container (docker systemd driver) seen from the host, v2: the pod's container, not the node.
	{"kind from host", "/system.slice/docker-" + id2 + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope",
		Ref{Runtime: "cri-containerd", ID: id1, PodUID: uid, QoS: "guaranteed", Unit: "cri-containerd-" + id1 + ".scope"}},
	// minikube node (docker cgroupfs) seen from the host, pod slice inside: the pod, not the node.
	{"minikube pod from host", "/docker/" + id2 + "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid_ + ".slice",
		Ref{PodUID: uid, QoS: "besteffort"}},
	// kubelet systemd driver, containerd with SystemdCgroup=false, v1: runc's
	// fs driver makes "slice:prefix:name" one directory under containerd.service.
	{"kube driver mismatch", "/system.slice/containerd.service/kubepods-burstable-pod" + uid_ + ".slice:cri-containerd:" + id1,
		Ref{Runtime: "cri-containerd", ID: id1, PodUID: uid, QoS: "burstable", Unit: "containerd.service"}},
	// kubelet cgroupfs driver + cri-o cgroupfs manager.
	{"kube cgroupfs crio", "/kubepods/besteffort/pod" + uid + "/crio-" + id1, Ref{Runtime: "cri-o", ID: id1, PodUID: uid, QoS: "besteffort"}},
	// cri-o cgroupfs manager, the conmon cgroup.
	{"kube cgroupfs crio conmon", "/kubepods/besteffort/pod" + uid + "/crio-conmon-" + id1, Ref{Runtime: "cri-o", ID: id1, PodUID: uid, QoS: "besteffort", Conmon: true}},

	// podman rootful, systemd manager, v1 or v2.
	{"podman systemd", "/machine.slice/libpod-" + id1 + ".scope", Ref{Runtime: "podman", ID: id1, Unit: "libpod-" + id1 + ".scope"}},
	// podman rootless, systemd manager, v2 (user manager).
	{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope",
		Ref{Runtime: "podman", ID: id1, Unit: "libpod-" + id1 + ".scope"}},
	// podman + crun, systemd manager, v2: crun's "container" sub-cgroup.
	{"podman nested", "/machine.slice/libpod-" + id1 + ".scope/container", Ref{Runtime: "podman", ID: id1, Unit: "libpod-" + id1 + ".scope"}},
	// podman pod, systemd manager: the pod slice, then the container.
	{"podman pod", "/machine.slice/machine-libpod_pod_" + id2 + ".slice/libpod-" + id1 + ".scope",
		Ref{Runtime: "podman", ID: id1, Unit: "libpod-" + id1 + ".scope"}},
	// podman, cgroupfs manager, v1.
	{"podman cgroupfs", "/libpod_parent/libpod-" + id1, Ref{Runtime: "podman", ID: id1}},
	// podman, systemd manager: conmon's scope.
	{"podman conmon", "/machine.slice/libpod-conmon-" + id1 + ".scope", Ref{Runtime: "podman", ID: id1, Unit: "libpod-conmon-" + id1 + ".scope", Conmon: true}},

	// lxc 4+ / lxd, v2 (and v1): payload cgroup.
	{"lxc payload", "/lxc.payload.web1", Ref{Runtime: "lxc", ID: "web1"}},
	// lxc 4+, systemd inside the container.
	{"lxc payload nested unit", "/lxc.payload.web1/system.slice/nginx.service", Ref{Runtime: "lxc", ID: "web1", Unit: "nginx.service"}},
	// lxc 4+: the monitor process's cgroup.
	{"lxc monitor", "/lxc.monitor.web1", Ref{Runtime: "lxc", ID: "web1", Conmon: true}},
	// lxc before 4.0, v1.
	{"lxc v1", "/lxc/web1", Ref{Runtime: "lxc", ID: "web1"}},

	// systemd services and sessions, v1 name=systemd or v2.
	{"systemd service", "/system.slice/containerd.service", Ref{Unit: "containerd.service"}},
	{"systemd session", "/user.slice/user-1000.slice/session-3.scope", Ref{Unit: "session-3.scope"}},
	{"systemd init", "/init.scope", Ref{Unit: "init.scope"}},

	// Negative and partial cases.
	{"root", "/", Ref{}},
	{"empty", "", Ref{}},
	{"63 hex", "/docker/" + id1[:63], Ref{}},
	{"65 hex", "/docker/" + id1 + "a", Ref{}},
	{"63 hex scope", "/system.slice/docker-" + id1[:63] + ".scope", Ref{Unit: "docker-" + id1[:63] + ".scope"}},
	{"non hex", "/docker/" + strings.Repeat("g", 64), Ref{}},
	{"slice only", "/system.slice", Ref{}},
	{"user slice", "/user.slice/user-1000.slice", Ref{}},
	{"kube 63 hex", "/kubepods.slice/kubepods-pod" + uid_ + ".slice/cri-containerd-" + id1[:63] + ".scope",
		Ref{PodUID: uid, QoS: "guaranteed", Unit: "cri-containerd-" + id1[:63] + ".scope"}},
	{"pod outside kubepods", "/pod" + uid + "/" + id1, Ref{ID: id1}},
	{"bad pod uid", "/kubepods/burstable/pod" + uid + "!", Ref{QoS: "burstable"}},
	{"docker buildkit", "/docker/buildkit", Ref{}},
	{"libpod conmon cgroupfs", "/libpod_parent/conmon", Ref{}},
	{"libvirt v1", "/machine/qemu-1-vm1.libvirt-qemu", Ref{}},
	{"newline", "/system.slice/docker-" + id1 + ".scope\n", Ref{}},
	{"newline inside", "/docker/" + id1 + "\n/x", Ref{}},
	{"three components", "/a/b/c", Ref{}},
	{"one component", "/foo", Ref{}},
	{"bare scope suffix", "/.scope", Ref{}},
	{"colon garbage", "/a:b", Ref{}},
}

func TestParseCgroupPath(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseCgroupPath(tc.path)
			if got != tc.want {
				t.Errorf("ParseCgroupPath(%q)\n got %+v\nwant %+v", tc.path, got, tc.want)
			}
			checkRef(t, got)
		})
	}
}

func TestParseCgroupPathLong(t *testing.T) {
	long := strings.Repeat("/a.slice", 100000) + "/docker-" + id1 + ".scope"
	if got := ParseCgroupPath(long); got.ID != id1 {
		t.Errorf("long path: got %+v", got)
	}
	deep := strings.Repeat("/kubepods", 50000)
	if got := ParseCgroupPath(deep); got != (Ref{}) {
		t.Errorf("deep kubepods: got %+v", got)
	}
}

// hybridDocker is /proc/PID/cgroup of a docker container, cgroupfs driver,
// on a systemd hybrid host (v1 controllers, name=systemd, empty v2 line).
const hybridDocker = "12:hugetlb:/docker/" + id1 + "\n" +
	"11:memory:/docker/" + id1 + "\n" +
	"10:cpu,cpuacct:/docker/" + id1 + "\n" +
	"9:pids:/docker/" + id1 + "\n" +
	"8:blkio:/docker/" + id1 + "\n" +
	"7:devices:/docker/" + id1 + "\n" +
	"6:freezer:/docker/" + id1 + "\n" +
	"5:net_cls,net_prio:/docker/" + id1 + "\n" +
	"4:cpuset:/docker/" + id1 + "\n" +
	"3:perf_event:/docker/" + id1 + "\n" +
	"2:rdma:/\n" +
	"1:name=systemd:/docker/" + id1 + "\n" +
	"0::/system.slice/containerd.service\n"

// hybridKube is a cri-containerd container under the kubelet systemd driver,
// v1 hybrid.
const hybridKube = "12:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope\n" +
	"11:pids:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope\n" +
	"10:cpu,cpuacct:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope\n" +
	"2:misc:/\n" +
	"1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/cri-containerd-" + id1 + ".scope\n" +
	"0::/\n"

// hybridSession is a login shell on a v1 hybrid host.
const hybridSession = "12:memory:/user.slice/user-1000.slice/session-3.scope\n" +
	"11:pids:/user.slice/user-1000.slice/session-3.scope\n" +
	"10:cpu,cpuacct:/user.slice\n" +
	"9:devices:/user.slice\n" +
	"1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n" +
	"0::/user.slice/user-1000.slice/session-3.scope\n"

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          Ref
	}{
		{"hybrid docker cgroupfs", hybridDocker, Ref{Runtime: "docker", ID: id1}},
		{"hybrid kube systemd", hybridKube, Ref{Runtime: "cri-containerd", ID: id1, PodUID: uid, QoS: "burstable", Unit: "cri-containerd-" + id1 + ".scope"}},
		{"hybrid session", hybridSession, Ref{Unit: "session-3.scope"}},
		// pure v2, docker systemd driver.
		{"v2 docker", "0::/system.slice/docker-" + id1 + ".scope\n", Ref{Runtime: "docker", ID: id1, Unit: "docker-" + id1 + ".scope"}},
		// pure v2, kubelet cgroupfs + containerd, no trailing newline.
		{"v2 kube cgroupfs", "0::/kubepods/besteffort/pod" + uid + "/" + id1, Ref{ID: id1, PodUID: uid, QoS: "besteffort"}},
		// pure v2, a service.
		{"v2 service", "0::/system.slice/containerd.service\n", Ref{Unit: "containerd.service"}},
		// pure v2, zombie whose cgroup is gone.
		{"v2 deleted", "0::/system.slice/docker-" + id1 + ".scope (deleted)\n", Ref{Runtime: "docker", ID: id1, Unit: "docker-" + id1 + ".scope"}},
		// pure v2, newer kernels when the cgroup itself is gone.
		{"v2 deleted no path", "0:: (deleted)\n", Ref{}},
		// pure v2, inside a private cgroup namespace.
		{"v2 root", "0::/\n", Ref{}},
		{"empty", "", Ref{}},
		// Preferences between lines naming different containers.
		{"v2 over memory", "11:memory:/docker/" + id1 + "\n0::/docker/" + id2 + "\n", Ref{Runtime: "docker", ID: id2}},
		{"memory over pids", "12:pids:/docker/" + id1 + "\n11:memory:/docker/" + id2 + "\n", Ref{Runtime: "docker", ID: id2}},
		{"pids over cpu", "12:cpu,cpuacct:/docker/" + id1 + "\n11:pids:/docker/" + id2 + "\n3:cpuset:/docker/" + id3 + "\n", Ref{Runtime: "docker", ID: id2}},
		{"first of equals", "3:cpuset:/docker/" + id1 + "\n2:blkio:/docker/" + id2 + "\n", Ref{Runtime: "docker", ID: id1}},
		{"id over unit", "0::/system.slice/containerd.service\n4:cpuset:/docker/" + id1 + "\n", Ref{Runtime: "docker", ID: id1}},
		{"certain id over guess", "0::/default/redis\n4:cpuset:/docker/" + id1 + "\n", Ref{Runtime: "docker", ID: id1}},
		{"guess alone", "0::/default/redis\n", Ref{Runtime: "containerd", Namespace: "default", ID: "redis", Guess: true}},
		{"pod over unit", "0::/system.slice/kubelet.service\n11:memory:/kubepods/burstable/pod" + uid + "\n", Ref{PodUID: uid, QoS: "burstable"}},
		{"qos alone is nothing", "11:memory:/kubepods/burstable\n", Ref{}},
		// Malformed lines are skipped.
		{"malformed", "garbage\nx::/docker/" + id1 + "\n5:memory\n4:memory:relative/docker/" + id1 + "\n:pids:/docker/" + id1 + "\n3:pids:/docker/" + id2 + "\n",
			Ref{Runtime: "docker", ID: id2}},
		{"path with colons", "0::/system.slice/containerd.service/kubepods-burstable-pod" + uid_ + ".slice:cri-containerd:" + id1 + "\n",
			Ref{Runtime: "cri-containerd", ID: id1, PodUID: uid, QoS: "burstable", Unit: "containerd.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseProcCgroup(tc.content)
			if got != tc.want {
				t.Errorf("ParseProcCgroup(%q)\n got %+v\nwant %+v", tc.content, got, tc.want)
			}
			checkRef(t, got)
		})
	}
}

func TestShortID(t *testing.T) {
	for in, want := range map[string]string{
		id1:                     id1[:12],
		strings.ToUpper(id1):    strings.ToUpper(id1[:12]),
		id1[:63]:                id1[:63],
		"redis-server":          "redis-server",
		"":                      "",
		strings.Repeat("z", 64): strings.Repeat("z", 64),
	} {
		if got := ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkRef fails t when r breaks an invariant every Ref keeps.
func checkRef(t *testing.T, r Ref) {
	t.Helper()
	if strings.Contains(r.ID, "/") {
		t.Errorf("ID %q has a '/'", r.ID)
	}
	if strings.Contains(r.PodUID, "_") {
		t.Errorf("PodUID %q has a '_'", r.PodUID)
	}
	if r.Guess && r.Runtime != "containerd" {
		t.Errorf("Guess with runtime %q", r.Runtime)
	}
	if r.Namespace != "" && !r.Guess {
		t.Errorf("Namespace %q without Guess", r.Namespace)
	}
	if (r.Runtime != "" || r.Conmon) && r.ID == "" {
		t.Errorf("runtime %q, conmon %v without an ID", r.Runtime, r.Conmon)
	}
	if r.ID != "" && r.Runtime != "lxc" && !r.Guess && (!isHexID(r.ID) || r.ID != strings.ToLower(r.ID)) {
		t.Errorf("ID %q is not 64 lowercase hex", r.ID)
	}
	switch r.QoS {
	case "", "guaranteed", "burstable", "besteffort":
	default:
		t.Errorf("QoS %q", r.QoS)
	}
	if r.PodUID != "" && r.QoS == "" {
		t.Errorf("PodUID %q without QoS", r.PodUID)
	}
	if r.Unit != "" && (!isUnit(r.Unit) || strings.Contains(r.Unit, "/")) {
		t.Errorf("Unit %q", r.Unit)
	}
	if got := ShortID(r.ID); !strings.HasPrefix(r.ID, got) {
		t.Errorf("ShortID(%q) = %q", r.ID, got)
	}
}
