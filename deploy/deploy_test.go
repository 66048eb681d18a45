package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/cli"
	"github.com/enospc/enospc/limits"
)

// The fixture host the DaemonSet's and NPD's command lines are run against.
const fixtureDir = "../testdata/hosts/jenkins-keyring"

// The capabilities the DaemonSet may add, each justified in enospc.yaml.
var allowedCaps = []corev1.Capability{"DAC_READ_SEARCH", "SETUID", "SYS_ADMIN", "SYS_PTRACE"}

// unconfinedAppArmor names the containers that may run without AppArmor, and
// why (the comment in enospc.yaml says more).
var unconfinedAppArmor = map[string]string{
	"enospc": "the runtimes' default profiles refuse ptrace reads of processes outside the profile: the host's /proc/PID/fd",
}

// Measured peaks the enospc container's memory is sized from.
var (
	servePeakRSS = resource.MustParse("55Mi")  // README, scripts/bench-serve: 54.4 MiB, 50 scrapers
	busyPeakRSS  = resource.MustParse("49Mi")  // README, the bad night: serve at 100%, 48.8 MiB
	maxMemLimit  = resource.MustParse("512Mi") // a limit far above any measurement hides a leak
)

const (
	enospcContainer = "enospc"
	proxyContainer  = "kube-rbac-proxy"
	proxyImage      = "quay.io/brancz/kube-rbac-proxy"
	saTokenDir      = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// ---------------------------------------------------------------- Kubernetes

// manifests are the decoded objects of deploy/kubernetes/*.yaml.
type manifests struct {
	raw                 map[string][]byte // file -> contents
	namespaces          []corev1.Namespace
	serviceAccounts     []corev1.ServiceAccount
	secrets             []corev1.Secret
	daemonSets          []appsv1.DaemonSet
	services            []corev1.Service
	clusterRoles        []rbacv1.ClusterRole
	clusterRoleBindings []rbacv1.ClusterRoleBinding
	networkPolicies     []networkingv1.NetworkPolicy
	podMonitors         []podMonitor
}

// podMonitor is the part of monitoring.coreos.com/v1 PodMonitor that
// deploy/kubernetes uses, field names as in the CRD: decoding strictly into
// it rejects a misspelt or misplaced field.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		JobLabel            string `json:"jobLabel,omitempty"`
		PodMetricsEndpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Authorization *struct {
				Type        string                    `json:"type,omitempty"`
				Credentials *corev1.SecretKeySelector `json:"credentials,omitempty"`
			} `json:"authorization,omitempty"`
			TLSConfig *struct {
				InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
				ServerName         string `json:"serverName,omitempty"`
			} `json:"tlsConfig,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool   `json:"honorLabels,omitempty"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels,omitempty"`
				Separator    string   `json:"separator,omitempty"`
				TargetLabel  string   `json:"targetLabel,omitempty"`
				Regex        string   `json:"regex,omitempty"`
				Replacement  *string  `json:"replacement,omitempty"`
				Action       string   `json:"action,omitempty"`
			} `json:"relabelings,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// yamlDocuments splits a multi-document YAML file, dropping documents that
// hold only comments.
func yamlDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		meaningful := false
		for _, line := range strings.Split(cur.String(), "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				meaningful = true
				break
			}
		}
		if meaningful {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.TrimRight(line, " \r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

// strict decodes YAML into v, refusing unknown and duplicate fields.
func strict(doc []byte, v any) error {
	return yaml.UnmarshalStrict(doc, v)
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no deploy/kubernetes/*.yaml")
	}
	m := manifests{raw: map[string][]byte{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m.raw[f] = b
		for i, doc := range yamlDocuments(b) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			where := fmt.Sprintf("%s document %d (%s %s)", f, i+1, tm.APIVersion, tm.Kind)
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				obj = grow(&m.namespaces)
			case "v1 ServiceAccount":
				obj = grow(&m.serviceAccounts)
			case "v1 Secret":
				obj = grow(&m.secrets)
			case "apps/v1 DaemonSet":
				obj = grow(&m.daemonSets)
			case "v1 Service":
				obj = grow(&m.services)
			case "rbac.authorization.k8s.io/v1 ClusterRole":
				obj = grow(&m.clusterRoles)
			case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
				obj = grow(&m.clusterRoleBindings)
			case "networking.k8s.io/v1 NetworkPolicy":
				obj = grow(&m.networkPolicies)
			case "monitoring.coreos.com/v1 PodMonitor":
				obj = grow(&m.podMonitors)
			default:
				t.Fatalf("%s: a kind this test does not know", where)
			}
			if err := strict(doc, obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
	}
	return m
}

// grow appends a zero value to *s and returns a pointer to it.
func grow[T any](s *[]T) *T {
	*s = append(*s, *new(T))
	return &(*s)[len(*s)-1]
}

// podContainer returns the container of pod named name, or nil.
func podContainer(pod *corev1.PodSpec, name string) *corev1.Container {
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	return nil
}

// enospcContainerOf returns the DaemonSet's enospc container.
func enospcContainerOf(t *testing.T, m manifests) *corev1.Container {
	t.Helper()
	if len(m.daemonSets) != 1 {
		t.Fatalf("want one DaemonSet, have %d", len(m.daemonSets))
	}
	c := podContainer(&m.daemonSets[0].Spec.Template.Spec, enospcContainer)
	if c == nil {
		t.Fatalf("the DaemonSet has no container %s", enospcContainer)
	}
	return c
}

// flagValues parses --name=value and --name value arguments.
func flagValues(args []string) map[string]string {
	v := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, value, ok := strings.Cut(args[i], "=")
		if !strings.HasPrefix(name, "--") {
			continue
		}
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			value = args[i+1]
			i++
		}
		v[name] = value
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.namespaces) != 1 || len(m.daemonSets) != 1 || len(m.services) != 1 || len(m.podMonitors) != 1 {
		t.Fatalf("want one Namespace, DaemonSet, Service and PodMonitor; have %d, %d, %d, %d",
			len(m.namespaces), len(m.daemonSets), len(m.services), len(m.podMonitors))
	}
	ns := m.namespaces[0].Name
	if ns != "enospc" {
		t.Errorf("namespace %q, want enospc", ns)
	}
	type named struct {
		kind string
		meta metav1.ObjectMeta
	}
	var namespaced, clusterWide []named
	for _, o := range m.serviceAccounts {
		namespaced = append(namespaced, named{"ServiceAccount", o.ObjectMeta})
	}
	for _, o := range m.secrets {
		namespaced = append(namespaced, named{"Secret", o.ObjectMeta})
	}
	for _, o := range m.networkPolicies {
		namespaced = append(namespaced, named{"NetworkPolicy", o.ObjectMeta})
	}
	namespaced = append(namespaced, named{"DaemonSet", m.daemonSets[0].ObjectMeta},
		named{"Service", m.services[0].ObjectMeta}, named{"PodMonitor", m.podMonitors[0].ObjectMeta})
	for _, o := range m.clusterRoles {
		clusterWide = append(clusterWide, named{"ClusterRole", o.ObjectMeta})
	}
	for _, o := range m.clusterRoleBindings {
		clusterWide = append(clusterWide, named{"ClusterRoleBinding", o.ObjectMeta})
	}
	for _, o := range append(namespaced, clusterWide...) {
		if errs := validation.IsDNS1123Subdomain(o.meta.Name); len(errs) > 0 {
			t.Errorf("%s name %q: %v", o.kind, o.meta.Name, errs)
		}
		for k, v := range o.meta.Labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s label %s=%s: %v", o.kind, k, v, errs)
			}
		}
	}
	for _, o := range namespaced {
		if o.meta.Namespace != ns {
			t.Errorf("%s %s is in namespace %q, not %q", o.kind, o.meta.Name, o.meta.Namespace, ns)
		}
	}
	for _, o := range clusterWide {
		if o.meta.Namespace != "" {
			t.Errorf("%s %s: a namespace on a cluster-wide object", o.kind, o.meta.Name)
		}
	}
	for _, sa := range m.serviceAccounts {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts a token into every container of its pods", sa.Name)
		}
	}

	// No listener on every address, anywhere.
	for f, b := range m.raw {
		for _, everywhere := range []string{"0.0.0.0", "[::]:"} {
			if bytes.Contains(b, []byte(everywhere)) {
				t.Errorf("%s mentions %s", f, everywhere)
			}
		}
	}

	ds := m.daemonSets[0]
	pod := ds.Spec.Template.Spec
	podLabels := ds.Spec.Template.Labels
	if ds.Spec.Selector == nil || !subset(ds.Spec.Selector.MatchLabels, podLabels) || len(ds.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("the DaemonSet's selector %v does not select its pods %v", ds.Spec.Selector, podLabels)
	}
	var sa *corev1.ServiceAccount
	for i := range m.serviceAccounts {
		if m.serviceAccounts[i].Name == pod.ServiceAccountName {
			sa = &m.serviceAccounts[i]
		}
	}
	if sa == nil {
		t.Fatalf("serviceAccountName %q: no such ServiceAccount", pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token into every container")
	}
	if !pod.HostPID {
		t.Error("hostPID is off: the holders of the node's limits are the node's processes")
	}
	if pod.HostNetwork || pod.HostIPC {
		t.Error("hostNetwork or hostIPC: enospc enters those namespaces itself, the pod needs neither")
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	tolerant := false
	for _, tol := range pod.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == "" {
			tolerant = true
		}
	}
	if !tolerant {
		t.Errorf("no toleration of every taint ({operator: Exists}): %+v", pod.Tolerations)
	}

	if len(pod.Containers) != 2 || len(pod.InitContainers) != 0 {
		t.Fatalf("want two containers (%s, %s), have %d (and %d init containers)",
			enospcContainer, proxyContainer, len(pod.Containers), len(pod.InitContainers))
	}
	c := podContainer(&pod, enospcContainer)
	proxy := podContainer(&pod, proxyContainer)
	if c == nil || proxy == nil {
		t.Fatalf("want containers %s and %s", enospcContainer, proxyContainer)
	}

	// Every container: no way up, read-only, a seccomp filter, AppArmor
	// unless justified.
	for _, ctr := range pod.Containers {
		sc := ctr.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", ctr.Name)
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", ctr.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", ctr.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", ctr.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil && pod.SecurityContext != nil {
			seccomp = pod.SecurityContext.SeccompProfile
		}
		if seccomp == nil || seccomp.Type == corev1.SeccompProfileTypeUnconfined {
			t.Errorf("%s: seccompProfile %+v: unset (Unconfined on most runtimes) or Unconfined", ctr.Name, seccomp)
		}
		apparmor := sc.AppArmorProfile
		if apparmor == nil && pod.SecurityContext != nil {
			apparmor = pod.SecurityContext.AppArmorProfile
		}
		if apparmor != nil && apparmor.Type == corev1.AppArmorProfileTypeUnconfined && unconfinedAppArmor[ctr.Name] == "" {
			t.Errorf("%s: AppArmor Unconfined without a reason in unconfinedAppArmor", ctr.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: capabilities.drop must be exactly [ALL]: %+v", ctr.Name, sc.Capabilities)
		}
		for _, p := range ctr.Ports {
			if p.HostPort != 0 || p.HostIP != "" {
				t.Errorf("%s: port %s on the host", ctr.Name, p.Name)
			}
		}
	}
	for _, v := range pod.Volumes {
		for _, ctr := range pod.Containers {
			for _, vm := range ctr.VolumeMounts {
				if vm.Name == v.Name && v.Projected != nil && ctr.Name != proxyContainer {
					for _, src := range v.Projected.Sources {
						if src.ServiceAccountToken != nil {
							t.Errorf("%s mounts the service account token (volume %s)", ctr.Name, v.Name)
						}
					}
				}
			}
		}
	}

	// enospc: root with four capabilities, on the pod's loopback.
	cmdline := append(slices.Clone(c.Command), c.Args...)
	const listen = "127.0.0.1:9877"
	wantCmd := []string{"/enospc", "serve", "--listen", listen, "--proc", "/host/proc", "--sys", "/host/sys", "--root", "/host", "--history-dir", historyDir}
	if !slices.Equal(cmdline, wantCmd) {
		t.Errorf("command line %q, want %q", cmdline, wantCmd)
	}
	if len(c.Ports) != 0 {
		t.Errorf("%s declares ports %+v: it listens on the pod's loopback only", c.Name, c.Ports)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("no securityContext.capabilities for enospc")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("runAsUser is not 0")
	}
	if added := slices.Sorted(slices.Values(sc.Capabilities.Add)); !slices.Equal(added, allowedCaps) {
		t.Errorf("capabilities.add %v, want %v", added, allowedCaps)
	}
	// containerd's, CRI-O's and Docker's default profiles allow setns and
	// quotactl once SYS_ADMIN is granted (deploy/README.md).
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot {
		t.Error("the pod's runAsNonRoot contradicts the container's runAsUser 0")
	}

	// Host mounts: every hostPath volume is mounted read-only, /proc and
	// /sys recursively, and the flags point at them.
	hostPaths := map[string]string{} // volume name -> host path
	declared := map[string]bool{}
	for _, v := range pod.Volumes {
		declared[v.Name] = true
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mountOf := map[string]string{} // host path -> mount path
	for _, ctr := range pod.Containers {
		for _, vm := range ctr.VolumeMounts {
			if !declared[vm.Name] {
				t.Errorf("%s: volumeMount %s: no such volume", ctr.Name, vm.Name)
			}
			hp, ok := hostPaths[vm.Name]
			if !ok {
				continue
			}
			if ctr.Name != enospcContainer {
				t.Errorf("%s mounts the host's %s", ctr.Name, hp)
				continue
			}
			mountOf[hp] = vm.MountPath
			// The history is the one host path enospc writes, at the
			// same path in the container, given to --history-dir.
			if hp == historyDir && vm.MountPath == historyDir && !vm.ReadOnly {
				continue
			}
			if !vm.ReadOnly {
				t.Errorf("host path %s is mounted writable at %s", hp, vm.MountPath)
			}
			if vm.MountPropagation != nil && *vm.MountPropagation == corev1.MountPropagationBidirectional {
				t.Errorf("host path %s: Bidirectional propagation", hp)
			}
			if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled &&
				vm.MountPropagation != nil && *vm.MountPropagation != corev1.MountPropagationNone {
				t.Errorf("host path %s: recursiveReadOnly with mount propagation, which the API server refuses", hp)
			}
			if hp == "/proc" || hp == "/sys" {
				if vm.RecursiveReadOnly == nil || *vm.RecursiveReadOnly == corev1.RecursiveReadOnlyDisabled {
					t.Errorf("host %s is not mounted recursively read-only: its files change the kernel", hp)
				}
			}
		}
	}
	for flag, hp := range map[string]string{"--proc": "/proc", "--sys": "/sys", "--root": "/"} {
		i := slices.Index(cmdline, flag)
		if i < 0 || i+1 >= len(cmdline) {
			t.Errorf("no %s", flag)
			continue
		}
		if got := mountOf[hp]; got != cmdline[i+1] {
			t.Errorf("%s %s, but the host's %s is mounted at %q", flag, cmdline[i+1], hp, got)
		}
	}

	// Probes reach enospc where it listens, from inside the container.
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.Exec == nil || len(p.Exec.Command) == 0 {
			t.Errorf("no %s probe run in the container (an HTTP probe dials the pod's address, not 127.0.0.1)", name)
			continue
		}
		if last := p.Exec.Command[len(p.Exec.Command)-1]; last != "http://"+listen+"/healthz" {
			t.Errorf("%s probe %q does not ask http://%s/healthz", name, p.Exec.Command, listen)
		}
		if p.TimeoutSeconds == 0 {
			t.Errorf("%s probe without a timeout", name)
		}
	}

	// Memory: sized from the measured peaks.
	memLimit := c.Resources.Limits.Memory()
	margin := busyPeakRSS.DeepCopy()
	margin.Add(busyPeakRSS)
	if memLimit.Cmp(margin) < 0 || memLimit.Cmp(maxMemLimit) > 0 {
		t.Errorf("memory limit %s, want from %s (twice the bad night's %s) to %s", memLimit, margin.String(), busyPeakRSS.String(), maxMemLimit.String())
	}
	memReq := c.Resources.Requests.Memory()
	if memReq.Cmp(servePeakRSS) < 0 || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("requests %v: want cpu, and memory of at least serve's measured %s", c.Resources.Requests, servePeakRSS.String())
	}
	if memReq.Cmp(*memLimit) > 0 {
		t.Errorf("memory request %s above the limit %s", memReq, memLimit)
	}
	var gomemlimit bool
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" {
			gomemlimit = true
		}
	}
	if !gomemlimit {
		t.Error("no GOMEMLIMIT from limits.memory")
	}

	// kube-rbac-proxy: a pinned image, as nobody, on the pod's address,
	// forwarding /metrics only to where enospc listens.
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(proxyImage) + `:v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$`).MatchString(proxy.Image) {
		t.Errorf("proxy image %q: want %s at a pinned version", proxy.Image, proxyImage)
	}
	if psc := proxy.SecurityContext; psc != nil {
		if psc.RunAsUser == nil || *psc.RunAsUser != 65534 || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Error("the proxy does not run as uid 65534 with runAsNonRoot")
		}
		if psc.Capabilities != nil && len(psc.Capabilities.Add) > 0 {
			t.Errorf("the proxy adds capabilities %v", psc.Capabilities.Add)
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("proxy seccompProfile %+v, want RuntimeDefault", psc.SeccompProfile)
		}
	}
	flags := flagValues(proxy.Args)
	if got := flags["--upstream"]; got != "http://"+listen+"/" {
		t.Errorf("proxy --upstream %q, want http://%s/", got, listen)
	}
	if got := flags["--allow-paths"]; got != "/metrics" {
		t.Errorf("proxy --allow-paths %q, want /metrics", got)
	}
	for _, f := range []string{"--ignore-paths", "--insecure-listen-address", "--config-file"} {
		if _, ok := flags[f]; ok {
			t.Errorf("proxy %s: every request is to be authenticated and authorized for /metrics", f)
		}
	}
	var proxyPort *corev1.ContainerPort
	for i := range proxy.Ports {
		if proxy.Ports[i].Name == "https" {
			proxyPort = &proxy.Ports[i]
		}
	}
	if proxyPort == nil {
		t.Fatalf("the proxy has no port named https: %+v", proxy.Ports)
	}
	wantListen := fmt.Sprintf("[$(POD_IP)]:%d", proxyPort.ContainerPort)
	if got := flags["--secure-listen-address"]; got != wantListen {
		t.Errorf("proxy --secure-listen-address %q, want %q (the pod's address, its https port)", got, wantListen)
	}
	var podIP bool
	for _, e := range proxy.Env {
		if e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP" {
			podIP = true
		}
	}
	if !podIP {
		t.Error("the proxy has no POD_IP from status.podIP")
	}
	var tokenMounted bool
	for _, vm := range proxy.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.Projected == nil || vm.MountPath != saTokenDir {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil && src.ServiceAccountToken.Path == "token" {
					tokenMounted = true
				}
			}
		}
	}
	if !tokenMounted {
		t.Errorf("the proxy has no service account token at %s/token: it cannot ask the API server", saTokenDir)
	}

	// RBAC: the pod's account may review tokens and access, nothing else;
	// the PodMonitor's token may get /metrics, nothing else.
	roles := map[string]rbacv1.ClusterRole{}
	for _, r := range m.clusterRoles {
		roles[r.Name] = r
	}
	accounts := map[string]bool{}
	for _, a := range m.serviceAccounts {
		accounts[a.Namespace+"/"+a.Name] = true
	}
	boundTo := map[string][]rbacv1.PolicyRule{} // namespace/name of a ServiceAccount -> its rules
	for _, b := range m.clusterRoleBindings {
		r, ok := roles[b.RoleRef.Name]
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.APIGroup != rbacv1.GroupName || !ok {
			t.Errorf("ClusterRoleBinding %s: roleRef %+v is not a ClusterRole here", b.Name, b.RoleRef)
			continue
		}
		for _, s := range b.Subjects {
			key := s.Namespace + "/" + s.Name
			if s.Kind != rbacv1.ServiceAccountKind || !accounts[key] {
				t.Errorf("ClusterRoleBinding %s: subject %+v is not a ServiceAccount here", b.Name, s)
				continue
			}
			boundTo[key] = append(boundTo[key], r.Rules...)
		}
	}
	reviewer := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
	metricsReader := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
	if got := boundTo[ns+"/"+sa.Name]; !reflect.DeepEqual(got, reviewer) {
		t.Errorf("the pod's ServiceAccount %s may %+v, want exactly %+v", sa.Name, got, reviewer)
	}
	var readerRole bool
	for _, r := range m.clusterRoles {
		readerRole = readerRole || reflect.DeepEqual(r.Rules, metricsReader)
	}
	if !readerRole {
		t.Errorf("no ClusterRole granting exactly %+v, for scrapers", metricsReader)
	}

	// NetworkPolicy: selects the pods; lets in only some peers, only to the
	// proxy's port.
	if len(m.networkPolicies) != 1 {
		t.Fatalf("want one NetworkPolicy, have %d", len(m.networkPolicies))
	}
	np := m.networkPolicies[0]
	if sel := np.Spec.PodSelector; len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) != 0 || !subset(sel.MatchLabels, podLabels) {
		t.Errorf("the NetworkPolicy's podSelector %+v does not select the pods %v", sel, podLabels)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("NetworkPolicy policyTypes %v: no Ingress", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) == 0 {
		t.Error("the NetworkPolicy lets nobody in: Prometheus cannot scrape")
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("ingress rule %d lets in every peer", i)
		}
		for _, peer := range rule.From {
			if peer.IPBlock != nil || (peer.NamespaceSelector == nil && peer.PodSelector == nil) ||
				(peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels)+len(peer.NamespaceSelector.MatchExpressions) == 0) ||
				(peer.PodSelector != nil && len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0) {
				t.Errorf("ingress rule %d: peer %+v selects more than Prometheus", i, peer)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("ingress rule %d opens every port", i)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || !(*p.Port == intstr.FromInt32(proxyPort.ContainerPort) || *p.Port == intstr.FromString(proxyPort.Name)) ||
				p.EndPort != nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				t.Errorf("ingress rule %d: port %v (protocol %v, endPort %v) is not the proxy's %d/TCP", i, p.Port, p.Protocol, p.EndPort, proxyPort.ContainerPort)
			}
		}
	}

	// Service and PodMonitor select the DaemonSet's pods, on the proxy's
	// port, over TLS with a token allowed to get /metrics.
	svc := m.services[0]
	if !subset(svc.Spec.Selector, podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != proxyPort.Name || svc.Spec.Ports[0].Port != proxyPort.ContainerPort {
		t.Errorf("Service ports %+v, want one named %s on %d", svc.Spec.Ports, proxyPort.Name, proxyPort.ContainerPort)
	} else if tp := svc.Spec.Ports[0].TargetPort; !(tp == intstr.FromString(proxyPort.Name) || tp == intstr.FromInt32(proxyPort.ContainerPort)) {
		t.Errorf("Service targetPort %s", tp.String())
	}
	pm := m.podMonitors[0]
	if !subset(pm.Spec.Selector.MatchLabels, podLabels) || len(pm.Spec.Selector.MatchLabels) == 0 || len(pm.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("the PodMonitor's selector %+v does not select the pods %v", pm.Spec.Selector, podLabels)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("PodMonitor endpoints: %+v", pm.Spec.PodMetricsEndpoints)
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Port != proxyPort.Name || (ep.Path != "" && ep.Path != "/metrics") || ep.Scheme != "https" {
		t.Errorf("PodMonitor scrapes %s port %q path %q, want https on %s /metrics", ep.Scheme, ep.Port, ep.Path, proxyPort.Name)
	}
	if ep.Authorization == nil || (ep.Authorization.Type != "" && ep.Authorization.Type != "Bearer") || ep.Authorization.Credentials == nil {
		t.Errorf("PodMonitor authorization %+v: want a bearer token", ep.Authorization)
	} else {
		cred := ep.Authorization.Credentials
		var scraper string
		for _, s := range m.secrets {
			if s.Name == cred.Name && s.Type == corev1.SecretTypeServiceAccountToken && cred.Key == corev1.ServiceAccountTokenKey {
				scraper = s.Annotations[corev1.ServiceAccountNameKey]
			}
		}
		if scraper == "" {
			t.Errorf("PodMonitor credentials %s/%s: not the token of a ServiceAccount here", cred.Name, cred.Key)
		} else if got := boundTo[ns+"/"+scraper]; !reflect.DeepEqual(got, metricsReader) {
			t.Errorf("the PodMonitor's ServiceAccount %s may %+v, want exactly %+v", scraper, got, metricsReader)
		}
	}
	interval, err1 := time.ParseDuration(ep.Interval)
	timeout, err2 := time.ParseDuration(ep.ScrapeTimeout)
	if err := errors.Join(err1, err2); err != nil || timeout > interval {
		t.Errorf("PodMonitor interval %q, scrapeTimeout %q: %v", ep.Interval, ep.ScrapeTimeout, err)
	}
	for _, r := range ep.Relabelings {
		if r.TargetLabel != "" && !regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`).MatchString(r.TargetLabel) {
			t.Errorf("relabeling to %q: not a label name", r.TargetLabel)
		}
	}
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ------------------------------------------------- the command lines, run

// fixtureConfig serves the fixture host with fixed statfs numbers and
// clock and no container runtime, so that the commands' output depends on
// the fixture only.
func fixtureConfig() cli.Config {
	return cli.Config{
		HostHook: func(h *host.Host) {
			h.Now = func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) }
			h.StatfsFunc = func(string) (host.Statfs, error) {
				return host.Statfs{BlockSize: 4096, Blocks: 1000, BlocksFree: 500, BlocksAvail: 500, Files: 1000, FilesFree: 500}, nil
			}
			h.QuotaFunc = func(string) ([]host.Quota, error) { return nil, errors.New("no quotas in the fixture") }
		},
		CheckHook: func(o *check.Options) { o.Inventory = attrib.NewInventory() },
	}
}

// onFixture rewrites a deployed command line to run here: the values of the
// flags in subst are replaced (each flag must be there), the rest is kept.
func onFixture(t *testing.T, args []string, subst map[string]string) []string {
	t.Helper()
	out := make([]string, 0, len(args))
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(a, "=")
		v, ok := subst[name]
		switch {
		case ok && hasValue:
			out = append(out, name+"="+v)
			seen[name] = true
		case ok && i+1 < len(args):
			out = append(out, a, v)
			seen[name] = true
			i++
		default:
			out = append(out, a)
		}
	}
	for name := range subst {
		if !seen[name] {
			t.Errorf("the command line %q has no %s", args, name)
		}
	}
	return out
}

func fixturePaths(t *testing.T) map[string]string {
	t.Helper()
	abs, err := filepath.Abs(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"--proc": abs + "/proc", "--sys": abs + "/sys", "--root": abs + "/root"}
}

// historyDir is where the DaemonSet keeps serve's history, on the node and
// in the container.
const historyDir = "/var/lib/enospc"

// served is what the DaemonSet's command line serves on the fixture host.
type served struct {
	metrics string
	names   map[string]bool // metric names of /metrics
}

var (
	serveOnce   sync.Once
	serveResult served
	serveErr    error
)

// serveDaemonSet runs the DaemonSet's own command line (only --listen and
// the host paths changed) in-process, and scrapes it once.
func serveDaemonSet(t *testing.T) served {
	t.Helper()
	serveOnce.Do(func() {
		c := enospcContainerOf(t, loadManifests(t))
		if len(c.Command) != 1 || c.Command[0] != "/enospc" {
			serveErr = fmt.Errorf("command %q: want [/enospc]", c.Command)
			return
		}
		subst := fixturePaths(t)
		subst["--listen"] = "127.0.0.1:0"
		subst["--history-dir"] = t.TempDir()
		serveResult, serveErr = runServe(onFixture(t, c.Args, subst))
	})
	if serveErr != nil {
		t.Fatal(serveErr)
	}
	return serveResult
}

func runServe(args []string) (served, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	done := make(chan int, 1)
	go func() {
		code := cli.RunWith(ctx, args, io.Discard, pw, fixtureConfig())
		pw.Close()
		done <- code
	}()
	var addr string
	deadline := time.After(20 * time.Second)
	for addr == "" {
		select {
		case l := <-lines:
			if _, a, ok := strings.Cut(l, "listening on "); ok {
				addr = strings.TrimSpace(a)
			}
		case code := <-done:
			return served{}, fmt.Errorf("enospc %q exited %d before listening", args, code)
		case <-deadline:
			return served{}, fmt.Errorf("enospc %q did not listen within 20s", args)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (string, error) {
		resp, err := client.Get(addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return string(b), err
	}
	var out served
	health, err := get("/healthz")
	if err != nil {
		return out, err
	}
	if strings.TrimSpace(health) != "ok" {
		return out, fmt.Errorf("/healthz answered %q", health)
	}
	if out.metrics, err = get("/metrics"); err != nil {
		return out, err
	}
	out.names = map[string]bool{}
	for _, line := range strings.Split(out.metrics, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out.names[f[2]] = true
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			return out, fmt.Errorf("enospc serve exited %d after its context ended", code)
		}
	case <-time.After(10 * time.Second):
		return out, errors.New("enospc serve did not stop within 10s of its context's end")
	}
	return out, nil
}

func TestDaemonSetCommandServes(t *testing.T) {
	s := serveDaemonSet(t)
	for _, name := range []string{
		"enospc_limit_used", "enospc_limit_max", "enospc_limit_severity",
		"enospc_scrape_collector_success", "enospc_scrape_collector_duration_seconds", "enospc_check_success",
	} {
		if !s.names[name] {
			t.Errorf("/metrics has no %s", name)
		}
	}
	// The fixture's keyring quota is 99.6% full: the row the alert is for.
	if !strings.Contains(s.metrics, `enospc_limit_severity{limit="keys.bytes",scope="uid 1001"} 3`) {
		t.Errorf("/metrics lacks the fixture's critical keys.bytes row:\n%s", s.metrics)
	}
}

// --------------------------------------------------------------- PromQL

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'` + "|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promToken    = regexp.MustCompile(`\$\{?\w+\}?|[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping clauses,
// keywords, numbers, template variables and function names are set aside.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promToken.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] == '$' || (tok[0] >= '0' && tok[0] <= '9') || promKeywords[tok] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	sort.Strings(names)
	return names
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`enospc_limit_used / enospc_limit_max > 0.95 and enospc_limit_max > 0`:                           {"enospc_limit_max", "enospc_limit_used"},
		`predict_linear(enospc_limit_used[1h], 24*3600) >= enospc_limit_max`:                             {"enospc_limit_max", "enospc_limit_used"},
		`count(up{job="a{b}", x=~"$instance"} == 2) or vector(0)`:                                        {"up"},
		`sum by (limit) (rate(foo_total[$__rate_interval])) / on(limit) group_left(scope) bar offset 5m`: {"bar", "foo_total"},
		`{__name__="x"}`: nil,
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// ------------------------------------------------------------ alert rules

type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestAlertRules(t *testing.T) {
	const path = "prometheus/enospc-alerts.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := strict(b, &rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(rf.Groups) != 1 || rf.Groups[0].Name != "enospc" {
		t.Fatalf("want one group named enospc")
	}
	want := map[string]struct {
		severity, forDur string
		exprHas          []string
	}{
		"EnospcLimitNearlyExhausted":     {"critical", "2m", []string{"enospc_limit_used / enospc_limit_max > 0.95", "enospc_limit_max > 0"}},
		"EnospcLimitExhaustionPredicted": {"warning", "15m", []string{"predict_linear(enospc_limit_used[1h], 24*3600) >= enospc_limit_max"}},
		"EnospcCheckFailing":             {"warning", "15m", []string{"enospc_check_success == 0", "enospc_scrape_collector_success == 0"}},
		"EnospcLimitETAWithinDay":        {"warning", "15m", []string{"enospc_limit_eta_seconds < 24*3600"}},
		"EnospcLimitETAWithin4h":         {"critical", "5m", []string{"enospc_limit_eta_seconds < 4*3600"}},
	}
	exported := maps.Clone(serveDaemonSet(t).names)
	// Exported for rising rows only, which the fixture host (one check)
	// never has; serve/history_test.go asserts that serve exports it.
	exported["enospc_limit_eta_seconds"] = true
	seen := map[string]bool{}
	for _, r := range rf.Groups[0].Rules {
		w, ok := want[r.Alert]
		if !ok {
			t.Errorf("unexpected rule %q %q", r.Alert, r.Record)
			continue
		}
		seen[r.Alert] = true
		if r.Labels["severity"] != w.severity || r.For != w.forDur {
			t.Errorf("%s: severity %q for %q, want %q for %q", r.Alert, r.Labels["severity"], r.For, w.severity, w.forDur)
		}
		for _, s := range w.exprHas {
			if !strings.Contains(r.Expr, s) {
				t.Errorf("%s: expr %q lacks %q", r.Alert, r.Expr, s)
			}
		}
		names := metricNames(r.Expr)
		if len(names) == 0 {
			t.Errorf("%s: expr %q selects no metric", r.Alert, r.Expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not a metric enospc serve exports", r.Alert, n)
			}
		}
		all := r.Annotations["summary"] + r.Annotations["description"] + r.Annotations["runbook"]
		for _, s := range []string{"{{ $labels.instance }}", "enospc check"} {
			if !strings.Contains(all, s) {
				t.Errorf("%s: annotations do not mention %s", r.Alert, s)
			}
		}
		if r.Alert != "EnospcCheckFailing" {
			for _, s := range []string{"{{ $labels.limit }}", "{{ $labels.scope }}", "enospc check --only {{ $labels.limit }}", "enospc explain"} {
				if !strings.Contains(all, s) {
					t.Errorf("%s: annotations do not mention %s", r.Alert, s)
				}
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no alert %s", name)
		}
	}
}

// TestPromtool runs promtool on the rules and their unit tests when it is
// installed (Debian's prometheus package ships it).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus): the rules were only parsed as YAML")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/enospc-alerts.yaml"},
		{"test", "rules", "prometheus/enospc-alerts.test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// -------------------------------------------------------------- dashboard

type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
			Multi bool            `json:"multi"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/enospc-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard title %q uid %q schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	exported := maps.Clone(serveDaemonSet(t).names)
	exported["enospc_limit_eta_seconds"] = true // rising rows only (see TestAlertRules)
	checkExpr := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not a metric enospc serve exports", where, n)
			}
		}
		if !strings.Contains(expr, `instance=~"$instance"`) {
			t.Errorf("%s: %q ignores the instance variable", where, expr)
		}
	}

	var instanceVar bool
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q = obj.Query
		}
		m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		for _, n := range metricNames(m[1]) {
			if !exported[n] {
				t.Errorf("variable %s: %s is not a metric enospc serve exports", v.Name, n)
			}
		}
		if v.Name == "instance" && m[2] == "instance" && v.Multi {
			instanceVar = true
		}
	}
	if !instanceVar {
		t.Error("no multi-value instance variable")
	}

	ids := map[int]bool{}
	types := map[string]int{}
	ratioOrdered, severityStat := false, false
	for _, p := range d.Panels {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] {
			t.Errorf("%s: duplicate id", where)
		}
		ids[p.ID] = true
		types[p.Type]++
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("%s: gridPos %+v", where, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		for _, tg := range p.Targets {
			checkExpr(where+" "+tg.RefID, tg.Expr)
			ratio := strings.Contains(tg.Expr, "enospc_limit_used") && strings.Contains(tg.Expr, "enospc_limit_max")
			if (p.Type == "bargauge" || p.Type == "table") && ratio && strings.Contains(tg.Expr, "sort_desc") {
				ratioOrdered = true
			}
			if p.Type == "stat" && strings.Contains(tg.Expr, "enospc_limit_severity") && strings.Contains(tg.Expr, "== 3") {
				severityStat = true
			}
		}
	}
	if !ratioOrdered {
		t.Error("no bar gauge or table of used/max, worst first")
	}
	if !severityStat {
		t.Error("no stat of the rows at critical")
	}
	if types["timeseries"] == 0 || types["stat"] == 0 || types["bargauge"]+types["table"] == 0 {
		t.Errorf("panel types %v: want a time series, a stat and a bar gauge or table", types)
	}
}

// ----------------------------------------------------- node-problem-detector

// npdPluginMonitor mirrors NPD's CustomPluginConfig
// (pkg/custompluginmonitor/types).
type npdPluginMonitor struct {
	Plugin       string `json:"plugin"`
	PluginConfig struct {
		InvokeInterval    string `json:"invoke_interval,omitempty"`
		Timeout           string `json:"timeout,omitempty"`
		MaxOutputLength   int    `json:"max_output_length,omitempty"`
		Concurrency       int    `json:"concurrency,omitempty"`
		MessageChangeCond bool   `json:"enable_message_change_based_condition_update,omitempty"`
		SkipInitialStatus bool   `json:"skip_initial_status,omitempty"`
	} `json:"pluginConfig"`
	Source           string         `json:"source"`
	MetricsReporting *bool          `json:"metricsReporting,omitempty"`
	Conditions       []NPDCondition `json:"conditions"`
	Rules            []struct {
		Type           string   `json:"type"`
		Condition      string   `json:"condition,omitempty"`
		Reason         string   `json:"reason"`
		Path           string   `json:"path"`
		Args           []string `json:"args"`
		Timeout        string   `json:"timeout,omitempty"`
		InvokeInterval string   `json:"invoke_interval,omitempty"`
	} `json:"rules"`
}

func decodeJSONStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", path)
	}
}

func TestNPDPluginMonitor(t *testing.T) {
	var pm npdPluginMonitor
	decodeJSONStrict(t, "node-problem-detector/enospc-plugin-monitor.json", &pm)
	if pm.Plugin != "custom" {
		t.Errorf("plugin %q: NPD runs only custom", pm.Plugin)
	}
	global, err := time.ParseDuration(pm.PluginConfig.Timeout)
	if err != nil {
		t.Fatalf("pluginConfig.timeout: %v", err)
	}
	if _, err := time.ParseDuration(pm.PluginConfig.InvokeInterval); err != nil {
		t.Errorf("pluginConfig.invoke_interval: %v", err)
	}
	if pm.PluginConfig.MaxOutputLength < 80 {
		t.Errorf("max_output_length %d cuts enospc's 80-character line", pm.PluginConfig.MaxOutputLength)
	}
	conditions := map[string]bool{}
	for _, c := range pm.Conditions {
		conditions[c.Type] = true
	}
	if len(pm.Rules) != 1 {
		t.Fatalf("want one rule, have %d", len(pm.Rules))
	}
	r := pm.Rules[0]
	if r.Type != "permanent" || r.Condition != "HiddenLimitExhausted" || !conditions[r.Condition] {
		t.Errorf("rule %s %q: want a permanent rule of the declared condition HiddenLimitExhausted", r.Type, r.Condition)
	}
	if r.Path != "/enospc" || len(r.Args) < 3 || !slices.Equal(r.Args[:3], []string{"check", "-o", "npd"}) {
		t.Errorf("rule runs %s %q, want /enospc check -o npd ...", r.Path, r.Args)
	}
	if d, err := time.ParseDuration(r.Timeout); err != nil || d > global {
		t.Errorf("rule timeout %q above the global %s (NPD refuses it): %v", r.Timeout, global, err)
	}

	// Run the rule's command line on the fixture: one line of at most 80
	// characters, exit 1 for the critical keyring quota.
	args := onFixture(t, r.Args, fixturePaths(t))
	var stdout, stderr bytes.Buffer
	code := cli.RunWith(context.Background(), args, &stdout, &stderr, fixtureConfig())
	out := stdout.String()
	if code != 1 || strings.Count(out, "\n") != 1 || len([]rune(strings.TrimSuffix(out, "\n"))) > 80 ||
		!strings.HasPrefix(out, "critical keys.bytes uid 1001") {
		if len(out) > 400 {
			out = out[:400] + "..."
		}
		t.Errorf("enospc %q: exit %d, stdout %q, stderr %q; want exit 1 and one line naming keys.bytes", args, code, out, stderr.String())
	}
}

// Each signature keeps its own flags: a (?i) of one does not make the next
// case-blind.
func TestPatternKeepsFlags(t *testing.T) {
	l := limits.Limit{ID: "x", Signatures: []*limits.Signature{limits.NewSignature(`(?i)abc`), limits.NewSignature(`DEF`), limits.NewSignature(`(?i)abc`)}}
	p := Pattern(l)
	if p != `(?:(?:(?i)abc)|(?:DEF))(?s:.*)` {
		t.Errorf("Pattern = %s", p)
	}
	re := regexp.MustCompile(p + `\z`)
	for msg, want := range map[string]bool{"xx ABC yy": true, "DEF\nzz": true, "def": false} {
		if got := npdMatch(re, msg); got != want {
			t.Errorf("%s on %q: %v, want %v", p, msg, got, want)
		}
	}
}

// npdMatch matches a message as NPD's system-log-monitor does with a
// buffer of bufferSize lines: the lines joined with "\n", the pattern
// anchored at the end.
func npdMatch(re *regexp.Regexp, lines ...string) bool {
	return re.MatchString(strings.Join(lines, "\n"))
}

func TestNPDLogMonitorUpToDate(t *testing.T) {
	want, err := LogMonitorJSON("kernel")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(LogMonitorFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go run ./deploy/gen", LogMonitorFile)
	}
}

func TestNPDLogMonitor(t *testing.T) {
	var lm LogMonitor
	decodeJSONStrict(t, LogMonitorFile, &lm)
	if lm.Plugin != "journald" || lm.PluginConfig["source"] != "kernel" {
		t.Errorf("plugin %s source %q, want journald of the kernel", lm.Plugin, lm.PluginConfig["source"])
	}
	if lm.BufferSize != 1 {
		t.Errorf("bufferSize %d: the patterns are written for one message", lm.BufferSize)
	}

	type limitRule struct {
		limit limits.Limit
		re    *regexp.Regexp
	}
	var rules []limitRule
	i := 0
	for _, f := range limits.Catalog() {
		for _, l := range f.Limits {
			if i >= len(lm.Rules) {
				t.Fatalf("no rule for %s", l.ID)
			}
			r := lm.Rules[i]
			i++
			if r.Reason != ReasonPrefix+string(l.ID) || r.Type != "temporary" {
				t.Errorf("rule %d: %s %s, want temporary %s%s", i, r.Type, r.Reason, ReasonPrefix, l.ID)
			}
			// NPD compiles pattern + `\z` (CompilePattern).
			re, err := regexp.Compile(r.Pattern + `\z`)
			if err != nil {
				t.Fatalf("rule %s: %v", r.Reason, err)
			}
			rules = append(rules, limitRule{l, re})
		}
	}
	if i != len(lm.Rules) {
		t.Errorf("%d rules for %d limits", len(lm.Rules), i)
	}

	// On every message of the corpus, a rule fires exactly when one of its
	// limit's signatures matches, also when the message runs over lines.
	b, err := os.ReadFile("../testdata/explain/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, rec.Message)
	}
	// The kernel's own words for the limits it logs.
	kernel := map[string]string{
		"nf_conntrack: nf_conntrack: table full, dropping packet": "conntrack",
		"neighbour: arp_cache: neighbor table overflow!":          "neighbour",
		"VFS: file-max limit 1048576 reached":                     "files",
	}
	for m := range kernel {
		msgs = append(msgs, m)
	}
	fired := 0
	for _, m := range msgs {
		for _, r := range rules {
			want := false
			for _, s := range r.limit.Signatures {
				want = want || s.MatchString(m)
			}
			for _, variant := range []string{m, m + "\ncontinued on a second line", "a first line\n" + m} {
				if got := npdMatch(r.re, variant); got != want {
					t.Errorf("rule %s on %q: %v, the catalog's signatures: %v", ReasonPrefix+r.limit.ID, variant, got, want)
				}
			}
			if want {
				fired++
			}
		}
	}
	for m, id := range kernel {
		for _, r := range rules {
			if string(r.limit.ID) == id && !npdMatch(r.re, m) {
				t.Errorf("%s does not fire on the kernel's %q", ReasonPrefix+id, m)
			}
		}
	}
	if fired == 0 {
		t.Error("no rule fired on the corpus")
	}
	t.Logf("%d rules, %d messages, %d (message, rule) matches", len(rules), len(msgs), fired)
}

// ---------------------------------------------------------------- Dockerfile

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var entrypoint, cmd []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(strings.TrimSpace(line[len(f[0]):])), &v); err != nil {
				t.Errorf("%s not in exec form: %v", f[0], err)
			}
			if strings.ToUpper(f[0]) == "CMD" {
				cmd = v
			} else {
				entrypoint = v
			}
		}
	}
	if len(froms) < 2 || froms[0] != "golang:1.26" || froms[len(froms)-1] != "scratch" {
		t.Errorf("stages %v: want golang:1.26 first and scratch last", froms)
	}
	if !strings.Contains(string(b), `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/enospc ./cmd/enospc`) {
		t.Error("the build is not CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"")
	}
	if !strings.Contains(string(b), "COPY --from=build /out/enospc /enospc") {
		t.Error("the binary is not copied to /enospc")
	}
	c := enospcContainerOf(t, loadManifests(t))
	if !slices.Equal(entrypoint, c.Command) || !slices.Equal(cmd, c.Args) {
		t.Errorf("image runs %q %q, the DaemonSet %q %q", entrypoint, cmd, c.Command, c.Args)
	}
}
