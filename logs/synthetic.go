package logs

import (
	"fmt"
	"math/rand/v2"
)

// SyntheticLog makes size bytes of syslog-like lines, one in every
// errorEvery an error of a hidden limit, for benchmarks: the same bytes for
// the same arguments.
func SyntheticLog(size, errorEvery int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	progs := []string{"kubelet[1104]", "containerd[880]", "dockerd[1020]", "systemd[1]", "kernel", "sshd[2201]"}
	normal := []string{
		"Started Session %d of user root.",
		"I1122 08:00:00.000000 1104 kubelet.go:%d] SyncLoop (PLEG): event for pod",
		"time=\"2026-11-22T08:00:00Z\" level=info msg=\"shim disconnected\" id=%x",
		"Accepted publickey for root from 10.0.0.%d port 52000 ssh2",
		"eth0: renewed lease, valid for %d seconds",
		"level=info msg=\"ImageCreate event &ImageCreate{Name:sha256:%x}\"",
	}
	errors := []string{
		"level=error msg=\"OCI runtime create failed: container init caused \\\"join session keyring: create session key: disk quota exceeded\\\"\" id=%x",
		"Error: ENOSPC: System limit for number of file watchers reached, watch '/app/%d'",
		"mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod%d: no space left on device",
		"runtime/cgo: pthread_create failed: Resource temporarily unavailable (%d)",
	}
	out := make([]byte, 0, size+512)
	for i := 0; len(out) < size; i++ {
		out = fmt.Appendf(out, "Nov 22 08:%02d:%02d node-1 %s: ", (i/60)%60, i%60, progs[r.IntN(len(progs))])
		if i%errorEvery == errorEvery-1 {
			out = fmt.Appendf(out, errors[r.IntN(len(errors))], r.IntN(1<<20))
		} else {
			out = fmt.Appendf(out, normal[r.IntN(len(normal))], r.IntN(1<<20))
		}
		out = append(out, '\n')
	}
	return out
}
