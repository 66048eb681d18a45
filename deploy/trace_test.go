package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The trace patch adds BPF and PERFMON to the enospc container and
// nothing else, and is a JSON patch whose paths exist in enospc.yaml.
func TestTracePatch(t *testing.T) {
	b, err := os.ReadFile("kubernetes/trace/trace-patch.json")
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ops); err != nil {
		t.Fatalf("trace-patch.json: %v", err)
	}
	const capsAdd = "/spec/template/spec/containers/0/securityContext/capabilities/add/-"
	var added []string
	tested := false
	for _, op := range ops {
		switch {
		case op.Op == "test" && op.Path == "/spec/template/spec/containers/0/name" && op.Value == "enospc":
			tested = true
		case op.Op == "add" && op.Path == capsAdd:
			added = append(added, op.Value)
		default:
			t.Errorf("unexpected operation %+v", op)
		}
	}
	if !tested {
		t.Error("the patch does not test that container 0 is enospc")
	}
	slices.Sort(added)
	if !slices.Equal(added, []string{"BPF", "PERFMON"}) {
		t.Errorf("the patch adds %v, want BPF and PERFMON", added)
	}
	m := loadManifests(t)
	for _, ds := range m.daemonSets {
		if ds.Name != "enospc" {
			continue
		}
		c := ds.Spec.Template.Spec.Containers
		if len(c) == 0 || c[0].Name != "enospc" || c[0].SecurityContext == nil || c[0].SecurityContext.Capabilities == nil {
			t.Fatalf("container 0 of the enospc DaemonSet is not enospc with capabilities: the patch's paths do not apply")
		}
		for _, cp := range c[0].SecurityContext.Capabilities.Add {
			if cp == "BPF" || cp == "PERFMON" {
				t.Errorf("enospc.yaml grants %s already: tracing is off by default", cp)
			}
		}
		return
	}
	t.Fatal("no enospc DaemonSet in deploy/kubernetes")
}
