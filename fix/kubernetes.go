package fix

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Kubernetes returns the manifests that apply the plan's sysctls on every
// node: a namespace, a service account without a token, and a DaemonSet
// whose privileged init container writes the sysctls (the host's
// /proc/sys is read-only to anything less) and whose only long-running
// container is an unprivileged pause. The values are this host's plan:
// nodes of another size may want others.
func Kubernetes(p Plan, image, pauseImage string) (string, error) {
	var sets []string
	for _, a := range p.Actions {
		if a.Kind == KindSysctl {
			sets = append(sets, fmt.Sprintf("%s=%d", a.Sysctl, a.To))
		}
	}
	if len(sets) == 0 {
		return "", fmt.Errorf("the plan raises no sysctl: nothing to apply on the nodes")
	}
	sort.Strings(sets)
	labels := map[string]string{"app.kubernetes.io/name": "enospc-sysctls", "app.kubernetes.io/part-of": "enospc"}
	no, yes := false, true
	ns := corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "enospc"}}
	sa := corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: "enospc-sysctls", Namespace: "enospc"}, AutomountServiceAccountToken: &no}
	ds := appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "enospc-sysctls", Namespace: "enospc", Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"enospc.io/sysctls": strings.Join(sets, " ")}},
				Spec: corev1.PodSpec{
					ServiceAccountName:           "enospc-sysctls",
					AutomountServiceAccountToken: &no,
					PriorityClassName:            "system-node-critical",
					Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					InitContainers: []corev1.Container{{
						Name:    "sysctl",
						Image:   image,
						Command: append([]string{"sysctl", "-w"}, sets...),
						// Only privileged makes the host's /proc/sys
						// writable: these sysctls are not namespaced.
						SecurityContext: &corev1.SecurityContext{Privileged: &yes},
					}},
					Containers: []corev1.Container{{
						Name:  "pause",
						Image: pauseImage,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
							RunAsUser:    ptr(int64(65535)),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
	var b strings.Builder
	b.WriteString("# enospc fix --kubernetes: applies on every node the sysctls planned on " + p.Host + ".\n")
	b.WriteString("# Persisted only while the DaemonSet runs (a node that reboots runs it again).\n")
	for i, obj := range []any{ns, sa, ds} {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.String(), nil
}

func ptr[T any](v T) *T { return &v }
