package trace

import (
	"testing"

	"github.com/cilium/ebpf"
)

// Both committed objects hold what the loader uses: the two programs at
// sys_exit, the maps and the variable, and CO-RE relocations against the
// running kernel rather than fixed offsets (a BTF section).
func TestCommittedObjects(t *testing.T) {
	for _, obj := range []string{"tracer_x86_bpfel.o", "tracer_arm64_bpfel.o"} {
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		for name, want := range map[string]ebpf.ProgramType{"sys_exit_btf": ebpf.Tracing, "sys_exit_raw": ebpf.RawTracepoint} {
			p, ok := spec.Programs[name]
			if !ok || p.Type != want || p.AttachTo != "sys_exit" {
				t.Errorf("%s: program %s is %+v, want %s at sys_exit", obj, name, p, want)
			}
		}
		m, ok := spec.Maps["failures"]
		if !ok || m.Type != ebpf.Hash || m.MaxEntries != 8192 {
			t.Errorf("%s: map failures is %+v, want a hash of 8192", obj, m)
		}
		if c, ok := spec.Maps["counters"]; !ok || c.Type != ebpf.PerCPUArray {
			t.Errorf("%s: map counters is %+v, want a per-CPU array", obj, c)
		}
		if _, ok := spec.Variables["self_tgid"]; !ok {
			t.Errorf("%s: no variable self_tgid", obj)
		}
		if spec.Types == nil {
			t.Errorf("%s: no BTF: CO-RE cannot relocate it", obj)
		}
	}
}
