package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const seccompPatchFile = "kubernetes/seccomp/localhost-patch.yaml"

// containerd's profile is built for the architecture and kernel it runs on
// (deploy/seccomp.go): the committed file is amd64's.
func skipUnlessAmd64(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the committed profile is linux/amd64's; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
}

func TestSeccompProfileUpToDate(t *testing.T) {
	skipUnlessAmd64(t)
	want, err := SeccompJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(SeccompFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go run ./deploy/gen", SeccompFile)
	}
}

// seccompAction is the action profile p takes for syscall name with args,
// as the kernel's filter decides it on the native architecture: the first
// rule naming the syscall whose argument conditions all hold, otherwise
// the default action. (runc ORs several conditions on one argument; no rule
// here has two on the same one, which the test checks.)
func seccompAction(t *testing.T, p *specs.LinuxSeccomp, name string, args ...uint64) specs.LinuxSeccompAction {
	t.Helper()
	for _, r := range p.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		idx := map[uint]bool{}
		holds := true
		for _, a := range r.Args {
			if idx[a.Index] {
				t.Fatalf("%s: two conditions on argument %d (runc ORs them)", name, a.Index)
			}
			idx[a.Index] = true
			var v uint64
			if int(a.Index) < len(args) {
				v = args[a.Index]
			}
			var ok bool
			switch a.Op {
			case specs.OpEqualTo:
				ok = v == a.Value
			case specs.OpNotEqual:
				ok = v != a.Value
			case specs.OpLessThan:
				ok = v < a.Value
			case specs.OpLessEqual:
				ok = v <= a.Value
			case specs.OpGreaterThan:
				ok = v > a.Value
			case specs.OpGreaterEqual:
				ok = v >= a.Value
			case specs.OpMaskedEqual:
				ok = v&a.Value == a.ValueTwo
			default:
				t.Fatalf("%s: operator %s", name, a.Op)
			}
			holds = holds && ok
		}
		if holds {
			return r.Action
		}
	}
	return p.DefaultAction
}

func loadSeccompProfile(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	var p specs.LinuxSeccomp
	decodeJSONStrict(t, SeccompFile, &p)
	return &p
}

func TestSeccompProfile(t *testing.T) {
	p := loadSeccompProfile(t)
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet != nil {
		t.Errorf("default action %s (errno %v), want EPERM for everything not allowed", p.DefaultAction, p.DefaultErrnoRet)
	}

	// Made for the capabilities the DaemonSet adds, and no others.
	m := loadManifests(t)
	var added []string
	for _, c := range enospcContainerOf(t, m).SecurityContext.Capabilities.Add {
		added = append(added, "CAP_"+string(c))
	}
	slices.Sort(added)
	if !slices.Equal(added, SeccompCapabilities) {
		t.Errorf("the profile is made for %v, the DaemonSet adds %v", SeccompCapabilities, added)
	}

	allow := func(name string, args ...uint64) bool {
		return seccompAction(t, p, name, args...) == specs.ActAllow
	}
	// keyctl KEYCTL_DESCRIBE, and no other operation.
	if !allow("keyctl", unix.KEYCTL_DESCRIBE, 12345, 0, 0) {
		t.Error("keyctl(KEYCTL_DESCRIBE) refused")
	}
	for op := uint64(0); op < 64; op++ {
		if op != unix.KEYCTL_DESCRIBE && allow("keyctl", op, 12345, 0, 0) {
			t.Errorf("keyctl operation %d allowed", op)
		}
	}
	for _, name := range []string{"add_key", "request_key"} {
		if allow(name) {
			t.Errorf("%s allowed: enospc never makes a key", name)
		}
	}
	// What enospc calls and containerd's profile allows for these
	// capabilities (deploy/README.md), still allowed.
	for _, name := range []string{"setns", "setfsuid", "statfs", "quotactl", "quotactl_fd", "unshare", "ioctl", "open_by_handle_at", "ptrace", "process_vm_readv"} {
		if !allow(name) {
			t.Errorf("%s refused", name)
		}
	}
	if !allow("clone", unix.CLONE_NEWUSER) || !allow("socket", unix.AF_NETLINK) {
		t.Error("clone(CLONE_NEWUSER) or socket(AF_NETLINK) refused")
	}
	for _, name := range []string{"kexec_load", "init_module", "reboot", "swapon", "delete_module"} {
		if allow(name) {
			t.Errorf("%s allowed", name)
		}
	}
}

// TestSeccompProfileIsContainerds checks that the profile is containerd's
// RuntimeDefault for the DaemonSet's bounding set with one rule added: the
// keyctl one.
func TestSeccompProfileIsContainerds(t *testing.T) {
	skipUnlessAmd64(t)
	p := loadSeccompProfile(t)
	var rest []specs.LinuxSyscall
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, "keyctl") {
			if !slices.Equal(r.Names, []string{"keyctl"}) {
				t.Errorf("keyctl shares a rule with %v", r.Names)
			}
			continue
		}
		rest = append(rest, r)
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: SeccompCapabilities}}}
	want := seccomp.DefaultProfile(spec)
	// Through JSON, as the file went: nil and empty argument lists alike.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var wantRT specs.LinuxSeccomp
	if err := json.Unmarshal(b, &wantRT); err != nil {
		t.Fatal(err)
	}
	got := *p
	got.Syscalls = rest
	if !reflect.DeepEqual(got, wantRT) {
		t.Error("the profile without its keyctl rule is not containerd's default profile for the DaemonSet's capabilities")
	}
	if len(rest) != len(p.Syscalls)-1 {
		t.Errorf("%d keyctl rules, want 1", len(p.Syscalls)-len(rest))
	}
	for _, name := range []string{"keyctl", "add_key", "request_key"} {
		if seccompAction(t, &wantRT, name, unix.KEYCTL_DESCRIBE) == specs.ActAllow {
			t.Errorf("containerd's default profile allows %s now: is the Localhost profile still needed?", name)
		}
	}
}

// podMergeKeys are the merge keys of the pod template's lists, as
// k8s.io/api declares them (patchMergeKey): a strategic merge patch merges
// these lists element by element and replaces any other.
var podMergeKeys = map[string]string{
	"containers":     "name",
	"initContainers": "name",
	"volumes":        "name",
	"volumeMounts":   "mountPath",
	"env":            "name",
	"ports":          "containerPort",
}

// strategicMerge is kubectl patch's default merge of patch into orig for
// the shapes deploy/kubernetes uses (no $patch directives, no deletions):
// objects merge field by field, the lists of podMergeKeys element by
// element, anything else is replaced. (apimachinery's strategicpatch would
// bring 16 modules into go.mod for this test.)
func strategicMerge(orig, patch any) any {
	po, ok := patch.(map[string]any)
	oo, ok2 := orig.(map[string]any)
	if !ok || !ok2 {
		return patch
	}
	out := map[string]any{}
	for k, v := range oo {
		out[k] = v
	}
	for k, pv := range po {
		ov, have := out[k]
		key, merged := podMergeKeys[k]
		pl, isList := pv.([]any)
		ol, wasList := ov.([]any)
		switch {
		case !have:
			out[k] = pv
		case merged && isList && wasList:
			res := slices.Clone(ol)
		next:
			for _, pe := range pl {
				pm, _ := pe.(map[string]any)
				for i, oe := range res {
					if om, _ := oe.(map[string]any); om != nil && pm != nil && om[key] == pm[key] {
						res[i] = strategicMerge(oe, pe)
						continue next
					}
				}
				res = append(res, pe)
			}
			out[k] = res
		default:
			out[k] = strategicMerge(ov, pv)
		}
	}
	return out
}

// jsonEqual compares a and b as their JSON (resource quantities decoded
// from YAML and from JSON differ inside, not in meaning).
func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// TestSeccompLocalhostPatch applies the Localhost patch to the DaemonSet as
// kubectl patch does (strategic merge) and checks the result.
func TestSeccompLocalhostPatch(t *testing.T) {
	patchYAML, err := os.ReadFile(seccompPatchFile)
	if err != nil {
		t.Fatal(err)
	}
	var strictPatch appsv1.DaemonSet
	if err := strict(patchYAML, &strictPatch); err != nil {
		t.Fatalf("%s: %v", seccompPatchFile, err)
	}
	patch, err := yaml.YAMLToJSON(patchYAML)
	if err != nil {
		t.Fatal(err)
	}
	m := loadManifests(t)
	orig := m.daemonSets[0]
	origJSON, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	var origObj, patchObj map[string]any
	if err := json.Unmarshal(origJSON, &origObj); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(patch, &patchObj); err != nil {
		t.Fatal(err)
	}
	outJSON, err := json.Marshal(strategicMerge(origObj, patchObj))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	dec := json.NewDecoder(bytes.NewReader(outJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ds); err != nil {
		t.Fatal(err)
	}
	pod := ds.Spec.Template.Spec

	// The containers: enospc under the Localhost profile, nothing else of
	// it changed; the proxy untouched.
	if len(pod.Containers) != 2 {
		t.Fatalf("%d containers after the patch, want 2", len(pod.Containers))
	}
	c := podContainer(&pod, enospcContainer)
	want := podContainer(&orig.Spec.Template.Spec, enospcContainer).DeepCopy()
	profileName := filepath.Base(SeccompFile)
	want.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &profileName}
	if !jsonEqual(t, c, want) {
		t.Errorf("the patched enospc container differs from enospc.yaml's by more than seccompProfile Localhost %s", profileName)
	}
	if !jsonEqual(t, podContainer(&pod, proxyContainer), podContainer(&orig.Spec.Template.Spec, proxyContainer)) {
		t.Error("the patch changes the proxy")
	}

	// The init container: no capability, read-only, RuntimeDefault; one
	// writable mount, the kubelet's seccomp directory, where it writes
	// the profile's name and nothing else.
	if len(pod.InitContainers) != 1 {
		t.Fatalf("%d init containers, want 1", len(pod.InitContainers))
	}
	ic := pod.InitContainers[0]
	if ic.Image != c.Image {
		t.Errorf("init container image %s, want enospc's %s", ic.Image, c.Image)
	}
	sc := ic.SecurityContext
	switch {
	case sc == nil || sc.Capabilities == nil:
		t.Fatal("init container: no securityContext.capabilities")
	case !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("init container capabilities %+v, want none", sc.Capabilities)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
		sc.Privileged != nil && *sc.Privileged:
		t.Error("init container: writable root, privilege escalation or privileged")
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault,
		sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeRuntimeDefault:
		t.Errorf("init container seccomp %+v, AppArmor %+v: want RuntimeDefault", sc.SeccompProfile, sc.AppArmorProfile)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		if _, dup := volumes[v.Name]; dup {
			t.Errorf("volume %s twice", v.Name)
		}
		volumes[v.Name] = v
	}
	var dir string
	for _, vm := range ic.VolumeMounts {
		v, ok := volumes[vm.Name]
		switch {
		case !ok:
			t.Errorf("init container mounts undeclared volume %s", vm.Name)
		case v.HostPath != nil:
			if v.HostPath.Path != "/var/lib/kubelet/seccomp" || vm.SubPath != "" {
				t.Errorf("init container mounts the host's %s%s", v.HostPath.Path, vm.SubPath)
			}
			dir = vm.MountPath
		case v.ConfigMap != nil:
			if v.ConfigMap.Name != "enospc-seccomp" || !vm.ReadOnly {
				t.Errorf("init container mounts ConfigMap %s (read-only %v)", v.ConfigMap.Name, vm.ReadOnly)
			}
		default:
			t.Errorf("init container mounts volume %s: %+v", vm.Name, v.VolumeSource)
		}
	}
	script := strings.Join(ic.Command, " ")
	if dir == "" || !strings.Contains(script, "mv -f "+dir+"/.enospc.json.new "+dir+"/"+profileName) {
		t.Errorf("init container command %q does not rename the profile onto %s/%s", script, dir, profileName)
	}
	for _, ctr := range pod.Containers {
		for _, vm := range ctr.VolumeMounts {
			if vm.Name == "kubelet-seccomp" || vm.Name == "seccomp-profile" {
				t.Errorf("%s mounts %s: only the init container needs it", ctr.Name, vm.Name)
			}
		}
	}

	// The steps in the README and the patch's comment name the same
	// ConfigMap and key.
	readme, err := os.ReadFile("kubernetes/seccomp/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string][]byte{"README.md": readme, seccompPatchFile: patchYAML} {
		for _, s := range []string{
			"create configmap enospc-seccomp",
			"--from-file=enospc.json=deploy/kubernetes/seccomp/enospc.json",
			"patch daemonset enospc",
		} {
			if !bytes.Contains(b, []byte(s)) {
				t.Errorf("%s does not say %q", f, s)
			}
		}
	}
}
