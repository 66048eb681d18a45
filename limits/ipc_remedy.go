package limits

// What to do about a full IPC limit, and whom the rows name as holders.

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/enospc/enospc/internal/quote"
)

// ipcAttributeToNamespace names the container or pod behind the holders of
// a container's namespace whose creator no longer runs: the objects of an
// IPC namespace belong to whoever owns the namespace, and die with it.
func ipcAttributeToNamespace(env *Env, ns *ipcNamespace, rows []Finding) {
	if ns.host || len(ns.procs) == 0 {
		return
	}
	a := env.attributor()
	var ref Consumer
	same, first := true, true
	for _, p := range ns.procs {
		c := Consumer{PID: p.PID}
		a.Consumer(&c)
		if first {
			ref, first = c, false
			continue
		}
		if c.Container != ref.Container {
			same = false
		}
		if c.PodUID != ref.PodUID {
			return
		}
	}
	if !same {
		ref.Container = ""
	}
	if ref.Container == "" && ref.PodUID == "" {
		return
	}
	for i := range rows {
		for j := range rows[i].Consumers {
			c := &rows[i].Consumers[j]
			if c.PID != 0 {
				continue
			}
			if c.Container == "" {
				c.Container = ref.Container
			}
			if c.PodUID == "" {
				c.PodUID, c.QoS = ref.PodUID, ref.QoS
			}
		}
	}
}

// ipcRemedy is the remedy of every row of the family.
func ipcRemedy(u Finding) []string {
	n := ipcNoteOf(u.Scope)
	out := []string{}
	in := ""
	if !n.host {
		pid := "PID"
		if n.pid > 0 {
			pid = strconv.Itoa(n.pid)
		}
		in = "nsenter -t " + pid + " -i "
	}
	var name string
	var value int64
	switch {
	case u.Limit == "ipc.shm" && u.Unit == "pages":
		name, value = "kernel.shmall", max(u.Max*2, u.Used*2)
	case u.Limit == "ipc.shm":
		name, value = "kernel.shmmni", min(max(u.Max*2, 4096), ipcMNI)
	case u.Limit == "ipc.msg":
		name, value = "kernel.msgmni", min(max(u.Max*2, 32000), ipcMNI)
	case u.Limit == "mqueue":
		name, value = "fs.mqueue.queues_max", min(max(u.Max*4, 1024), queuesMaxCeiling)
	}
	switch u.Limit {
	case "ipc.shm":
		if len(n.orphans) > 0 {
			out = append(out, fmt.Sprintf("%d segments are attached by no process and their creator has exited (shmid %s): if nothing will attach them again, remove them: %sipcrm -m SHMID (%sipcs -m -p shows creator and last user)",
				len(n.orphans), ipcIDList(n.orphans, 10), in, in))
		} else {
			out = append(out, fmt.Sprintf("see who holds them: %sipcs -m -p -c; a segment lives until removed (ipcrm -m SHMID), not until its creator exits", in))
		}
	case "ipc.sem":
		if len(n.cookies) > 0 {
			out = append(out, fmt.Sprintf("%d sets are device-mapper udev cookies that udev never completed (leaked by dmsetup, LVM or docker's devicemapper driver): release them with %sdmsetup udevcomplete_all while no LVM or device-mapper operation runs, and check that udev runs its dm rules", len(n.cookies), in))
		}
		if ids := n.leftovers["ipc.sem"]; len(ids) > 0 {
			out = append(out, fmt.Sprintf("%d sets belong to uids that run no process in this namespace, leftovers of a killed Apache, PostgreSQL or PHP (semid %s): check with %sipcs -s -c, then %sipcrm -s SEMID", len(ids), ipcIDList(ids, 10), in, in))
		}
		if len(out) == 0 {
			out = append(out, fmt.Sprintf("see who holds them: %sipcs -s -c; a set lives until removed (ipcrm -s SEMID), not until its creator exits", in))
		}
	case "ipc.msg":
		if ids := n.leftovers["ipc.msg"]; len(ids) > 0 {
			out = append(out, fmt.Sprintf("%d queues belong to uids that run no process in this namespace (msqid %s): check with %sipcs -q -c, then %sipcrm -q MSQID", len(ids), ipcIDList(ids, 10), in, in))
		} else {
			out = append(out, fmt.Sprintf("see who holds them: %sipcs -q -c -p; a queue lives until removed (ipcrm -q MSQID)", in))
		}
	case "mqueue":
		dir := n.mqDir
		if dir == "" {
			dir = "/dev/mqueue"
		}
		mnt := ""
		if !n.host {
			mnt = strings.Replace(in, "-i ", "-m -i ", 1)
		}
		if k := len(n.staleQueues); k > 0 {
			out = append(out, fmt.Sprintf("%d queues belong to uids that run no process in this namespace (%s): remove the ones nothing uses: %srm %s/NAME (mq_unlink)", k, strings.Join(n.staleQueues[:min(k, 5)], ", "), mnt, quote.Shell(dir)))
		} else {
			out = append(out, fmt.Sprintf("queues live until mq_unlink: list them with %sls -l %s and remove the stale ones (%srm %s/NAME)", mnt, quote.Shell(dir), mnt, quote.Shell(dir)))
		}
	}
	if u.Limit == "ipc.sem" {
		if !n.semOK {
			return out
		}
		s := n.sem
		if u.Unit == "semaphores" {
			s[1] = min(max(s[1]*2, s[0]*s[3]), math.MaxInt32)
		} else {
			s[3] = min(max(s[3]*2, 256), ipcMNI)
			s[1] = min(max(s[1], s[0]*s[3]), math.MaxInt32)
		}
		if s == n.sem {
			return append(out, "kernel.sem is at its ceilings: only fewer sets help")
		}
		v := fmt.Sprintf("%d %d %d %d", s[0], s[1], s[2], s[3])
		return append(out, ipcRaise("kernel.sem", "'"+v+"'", n, in)...)
	}
	if u.Limit == "ipc.shm" && u.Unit == "segments" && u.Max >= ipcMNI || u.Limit == "ipc.msg" && u.Max >= ipcMNI {
		return append(out, fmt.Sprintf("%s is at its ceiling (32768; the boot parameter ipcmni_extend raises it to 16M): only fewer objects help", name))
	}
	if u.Limit == "mqueue" && u.Max >= queuesMaxCeiling {
		return append(out, "fs.mqueue.queues_max is at its ceiling (65536): only fewer queues help")
	}
	return append(out, ipcRaise(name, strconv.FormatInt(value, 10), n, in)...)
}

// ipcRaise words raising an IPC sysctl: on the host, for now and across
// reboots; in a container's namespace, from the host now and in the
// container's definition for its next start.
func ipcRaise(name, value string, n *ipcNote, in string) []string {
	if n.host {
		conf := strings.Trim(value, "'")
		return []string{
			fmt.Sprintf("raise the limit now: sysctl -w %s=%s", name, value),
			fmt.Sprintf("keep it across reboots: echo '%s = %s' > /etc/sysctl.d/90-enospc-ipc.conf", name, conf),
		}
	}
	pattern := name
	if i := strings.LastIndexByte(name, '.'); i > 0 && name != "kernel.sem" {
		pattern = name[:i+1] + "*"
		if strings.HasPrefix(name, "kernel.shm") {
			pattern = "kernel.shm*"
		} else if strings.HasPrefix(name, "kernel.msg") {
			pattern = "kernel.msg*"
		}
	}
	return []string{
		fmt.Sprintf("this IPC namespace has its own limit, the kernel's default unless its container set one: raise it now from the host: %ssysctl -w %s=%s", in, name, value),
		fmt.Sprintf("for the container's next start: docker run --sysctl %s=%s, or the pod's securityContext.sysctls (allowed by the kubelet's --allowed-unsafe-sysctls '%s')", name, value, pattern),
	}
}
