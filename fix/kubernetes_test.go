package fix

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The manifests decode strictly into the Kubernetes API types, and only
// the init container is privileged.
func TestKubernetesManifests(t *testing.T) {
	p := Plan{Host: "node-1", Actions: []Action{
		{Kind: KindSysctl, Sysctl: "kernel.keys.maxbytes", From: 20000, To: 2000000},
		{Kind: KindSysctl, Sysctl: "fs.inotify.max_user_watches", From: 8192, To: 524288},
		{Kind: KindGuidance, Limit: "cgroups.dying"},
	}}
	out, err := Kubernetes(p, "busybox:1.36", "registry.k8s.io/pause:3.9")
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split([]byte(out), []byte("\n---\n"))
	if len(docs) != 3 {
		t.Fatalf("%d documents:\n%s", len(docs), out)
	}
	var ns corev1.Namespace
	var sa corev1.ServiceAccount
	var ds appsv1.DaemonSet
	for i, into := range []any{&ns, &sa, &ds} {
		if err := yaml.UnmarshalStrict(docs[i], into); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, docs[i])
		}
	}
	if ns.Kind != "Namespace" || sa.Kind != "ServiceAccount" || ds.Kind != "DaemonSet" || ds.Namespace != "enospc" {
		t.Fatalf("kinds: %s %s %s", ns.Kind, sa.Kind, ds.Kind)
	}
	spec := ds.Spec.Template.Spec
	init := spec.InitContainers[0]
	if got := strings.Join(init.Command, " "); got != "sysctl -w fs.inotify.max_user_watches=524288 kernel.keys.maxbytes=2000000" {
		t.Errorf("init command: %s", got)
	}
	if init.SecurityContext == nil || init.SecurityContext.Privileged == nil || !*init.SecurityContext.Privileged {
		t.Error("the sysctl container cannot write /proc/sys unprivileged")
	}
	c := spec.Containers[0]
	if c.SecurityContext.Privileged != nil || *c.SecurityContext.AllowPrivilegeEscalation || !*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("the long-running container is not least privilege: %+v", c.SecurityContext)
	}
	if *spec.AutomountServiceAccountToken || len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("pod spec: token %v, tolerations %+v", *spec.AutomountServiceAccountToken, spec.Tolerations)
	}
	if _, err := Kubernetes(Plan{Actions: []Action{{Kind: KindGuidance}}}, "busybox", "pause"); err == nil {
		t.Error("manifests for a plan that raises nothing")
	}
}
