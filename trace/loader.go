//go:build amd64 || arm64

package trace

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// probe is the loaded, attached program and its maps.
type probe struct {
	coll     *ebpf.Collection
	link     link.Link
	failures *ebpf.Map
	counters *ebpf.Map
	// Attach is how the program is attached: "tp_btf/sys_exit" or
	// "raw_tp/sys_exit".
	attach string
}

// load loads the program at sys_exit, tp_btf first and raw_tp when the
// kernel refuses that, fills its syscall table and attaches it. On any
// error nothing is left loaded or attached.
func load() (*probe, error) {
	var errs []error
	for _, prog := range []string{tracerProgSysExitBtf, tracerProgSysExitRaw} {
		p, err := loadOne(prog)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return nil, classifyLoadError(errors.Join(errs...))
}

func loadOne(prog string) (_ *probe, err error) {
	spec, err := loadTracer()
	if err != nil {
		return nil, fmt.Errorf("read the embedded program: %w", err)
	}
	for name := range spec.Programs {
		if name != prog {
			delete(spec.Programs, name)
		}
	}
	if err := spec.Variables[tracerVarSelfTgid].Set(uint32(os.Getpid())); err != nil {
		return nil, fmt.Errorf("set self_tgid: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", prog, err)
	}
	defer func() {
		if err != nil {
			coll.Close()
		}
	}()
	classes := coll.Maps[tracerMapSyscallClass]
	for nr, name := range sysnames {
		if nr >= classes.MaxEntries() {
			continue
		}
		if f := classify(name).flags; f != 0 {
			if err := classes.Put(nr, f); err != nil {
				return nil, fmt.Errorf("fill the syscall table: %w", err)
			}
		}
	}
	p := &probe{coll: coll, failures: coll.Maps[tracerMapFailures], counters: coll.Maps[tracerMapCounters]}
	switch prog {
	case tracerProgSysExitBtf:
		p.attach = "tp_btf/sys_exit"
		p.link, err = link.AttachTracing(link.TracingOptions{Program: coll.Programs[prog], AttachType: ebpf.AttachTraceRawTp})
	default:
		p.attach = "raw_tp/sys_exit"
		p.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_exit", Program: coll.Programs[prog]})
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", p.attach, err)
	}
	return p, nil
}

// detach stops counting; the maps stay readable for the last drain.
func (p *probe) detach() {
	if p.link != nil {
		p.link.Close()
		p.link = nil
	}
}

func (p *probe) close() {
	p.detach()
	p.coll.Close()
}

// entry is one folded failure as the kernel keeps it.
type entry struct {
	key fkey
	val tracerFailure
}

// fkey is (tgid, syscall, errno), the key failures are folded by.
type fkey struct{ tgid, nr, err uint32 }

func (p *probe) entries() ([]entry, error) {
	var (
		k   tracerFoldKey
		v   tracerFailure
		out []entry
	)
	it := p.failures.Iterate()
	for it.Next(&k, &v) {
		out = append(out, entry{key: fkey{k.Tgid, k.Nr, k.Err}, val: v})
	}
	return out, it.Err()
}

// take removes a key and returns its last value: no failure counted
// between the read and the removal is lost.
func (p *probe) take(key fkey) (tracerFailure, error) {
	var v tracerFailure
	err := p.failures.LookupAndDelete(tracerFoldKey{Tgid: key.tgid, Nr: key.nr, Err: key.err}, &v)
	return v, err
}

// stats sums the per-CPU counters: kept, folded, dropped.
func (p *probe) stats() (Stats, error) {
	var s Stats
	for i, dst := range []*uint64{&s.Kept, &s.Folded, &s.Dropped} {
		var per []uint64
		if err := p.counters.Lookup(uint32(i), &per); err != nil {
			return s, fmt.Errorf("read counter %d: %w", i, err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return s, nil
}

func (v *tracerFailure) raw() rawFailure {
	return rawFailure{
		Count: v.Count, FirstNs: v.FirstNs, LastNs: v.LastNs,
		CgroupV2: v.CgroupV2, CgroupPids: v.CgroupPids, CgroupMemory: v.CgroupMemory,
		Args: v.Args, NofileCur: v.NofileCur, NprocCur: v.NprocCur,
		FSMagic: v.FsMagic, FSDev: v.FsDev, TID: v.Tid, UID: v.Uid, MntNS: v.MntNs, UserNS: v.UserNs,
		HasPath: v.Flags&1 != 0, HasFS: v.Flags&2 != 0,
		Comm: cstr(v.Comm[:]), Path: cstr(v.Path[:]),
	}
}

func cstr(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
