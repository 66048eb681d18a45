package logs

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// SyntheticLog makes size bytes of syslog-like lines, one in every
// errorEvery an error of a hidden limit, for benchmarks: the same bytes for
// the same arguments.
func SyntheticLog(size, errorEvery int) []byte {
	r := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- repeatable benchmark input, not a secret
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

// DenseLog makes size bytes of log where every line is an error of a
// hidden limit, as on a node where the kubelet and the runtime retry for
// days: syslog, klog, CRI and docker json-file lines, with pids, container
// ids, paths and times that vary from line to line, the pods of one node.
// The same bytes for the same size.
func DenseLog(size int) []byte {
	r := rand.New(rand.NewPCG(3, 4)) // #nosec G404 -- repeatable benchmark input, not a secret
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[r.IntN(16)]
		}
		return string(b)
	}
	// A node runs a hundred pods or so, and a cgroup path names the pod
	// by its uid after "pod": the same uids come back.
	var pods []string
	for range 100 {
		pods = append(pods, hex(8)+"-"+hex(4)+"-"+hex(4)+"-"+hex(4)+"-"+hex(12))
	}
	msgs := []func() string{
		func() string {
			return fmt.Sprintf(`time="2026-11-22T08:%02d:%02d.%09dZ" level=error msg="OCI runtime create failed: container init caused \"join session keyring: create session key: disk quota exceeded\": unknown" id=%s`, r.IntN(60), r.IntN(60), r.IntN(1e9), hex(64))
		},
		func() string {
			return fmt.Sprintf("Error: ENOSPC: System limit for number of file watchers reached, watch '/app/node_modules/pkg%d/lib/%s.js'", r.IntN(5000), hex(8))
		},
		func() string {
			return fmt.Sprintf("Failed to create pod sandbox: mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod%s/%s: no space left on device", pods[r.IntN(len(pods))], hex(64))
		},
		func() string {
			return fmt.Sprintf("runtime/cgo: pthread_create failed: Resource temporarily unavailable (goroutine %d)", r.IntN(1<<20))
		},
		func() string {
			return fmt.Sprintf("failed to create fsnotify watcher for /var/lib/kubelet/pods/%s/volumes: too many open files", hex(32))
		},
		func() string {
			return fmt.Sprintf("ctr: failed to create shim task: OCI runtime create failed: open /run/containerd/fifo/%d/%s-stdout: no space left on device", r.IntN(1<<31), hex(64))
		},
		func() string {
			return fmt.Sprintf("bash: fork: retry: Resource temporarily unavailable (pid %d)", r.IntN(1<<22))
		},
		func() string {
			return fmt.Sprintf("java.lang.OutOfMemoryError: unable to create native thread: possibly out of memory or process/resource limits reached (thread %d)", r.IntN(1<<16))
		},
		func() string {
			return fmt.Sprintf("write /var/lib/docker/overlay2/%s/diff/tmp/build-%d.log: no space left on device", hex(64), r.IntN(1<<20))
		},
		func() string {
			return fmt.Sprintf("VFS: file-max limit %d reached", 65536+r.IntN(1<<20))
		},
	}
	out := make([]byte, 0, size+1024)
	for i := 0; len(out) < size; i++ {
		msg := msgs[r.IntN(len(msgs))]()
		sec := i / 50
		switch r.IntN(4) {
		case 0:
			out = fmt.Appendf(out, "Nov 22 %02d:%02d:%02d node-%d kubelet[%d]: %s\n", (sec/3600)%24, (sec/60)%60, sec%60, r.IntN(8), 1000+r.IntN(30000), msg)
		case 1:
			out = fmt.Appendf(out, "E1122 %02d:%02d:%02d.%06d %7d kubelet.go:%d] %s\n", (sec/3600)%24, (sec/60)%60, sec%60, r.IntN(1e6), 1000+r.IntN(30000), r.IntN(3000), msg)
		case 2:
			out = fmt.Appendf(out, "2026-11-22T%02d:%02d:%02d.%09dZ stderr F %s\n", (sec/3600)%24, (sec/60)%60, sec%60, r.IntN(1e9), msg)
		default:
			j, _ := json.Marshal(map[string]string{"log": msg + "\n", "stream": "stderr", "time": fmt.Sprintf("2026-11-22T%02d:%02d:%02d.%09dZ", (sec/3600)%24, (sec/60)%60, sec%60, r.IntN(1e9))})
			out = append(append(out, j...), '\n')
		}
	}
	return out
}
