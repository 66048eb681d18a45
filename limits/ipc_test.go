package limits

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// Captured on kernel 6.18 (the lab's private namespace) and 3.10 (no rss
// and swap columns).
const (
	sysvShm618 = `       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
 331669506          0   644                  4096  9365     0      0     0     0     0     0          0          0 1795340102                     0                     0
         0      32769  1600              8388608  1200  1301      2    26    26    26    26 1795340110          0 1795340102               8388608                     0
`
	sysvShm310 = `       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime
  5432001      65536  1600         56  1200  1200      5    26    26    26    26 1560000000          0 1560000000
`
	sysvSem = `       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime
 223154823          0   600          1     0     0     0     0 1560000000 1560000000
 -12345678          1   600         17    48    48     0     0          0 1560000000
`
	sysvMsg = `       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime
         0          0   644           0          0     0     0     0     0     0     0          0          0 1795340102
`
)

func TestParseSysvShm(t *testing.T) {
	segs, bad, err := parseSysvShm([]byte(sysvShm618))
	if err != nil || bad != 0 || len(segs) != 2 {
		t.Fatalf("6.18: %+v bad %d err %v", segs, bad, err)
	}
	want := shmSegment{Key: 0, ID: 32769, Size: 8388608, CPID: 1200, Nattch: 2, UID: 26, CUID: 26}
	if segs[1] != want {
		t.Errorf("segment = %+v, want %+v", segs[1], want)
	}
	segs, bad, err = parseSysvShm([]byte(sysvShm310))
	if err != nil || bad != 0 || len(segs) != 1 || segs[0].Size != 56 || segs[0].Key != 5432001 {
		t.Fatalf("3.10: %+v bad %d err %v", segs, bad, err)
	}
	// A truncated line and a garbage number are skipped and counted.
	_, bad, err = parseSysvShm([]byte(sysvShm310 + "  1 2 3\n  x 65537 1600 56 1 1 0 0 0 0 0 0 0 0\n"))
	if err != nil || bad != 2 {
		t.Errorf("bad lines: bad %d err %v", bad, err)
	}
	if _, _, err := parseSysvShm([]byte("")); err == nil {
		t.Error("empty file accepted")
	}
	if _, _, err := parseSysvShm([]byte("key semid\n")); err == nil || !strings.Contains(err.Error(), "shmid") {
		t.Errorf("wrong header: %v", err)
	}
}

func TestParseSysvSemMsg(t *testing.T) {
	sets, bad, err := parseSysvSem([]byte(sysvSem))
	if err != nil || bad != 0 || len(sets) != 2 {
		t.Fatalf("sem: %+v bad %d err %v", sets, bad, err)
	}
	if uint32(sets[0].Key)>>16 != dmCookieMagic {
		t.Errorf("key %#x is a device-mapper cookie", sets[0].Key)
	}
	if sets[1].Key != -12345678 || sets[1].NSems != 17 || sets[1].UID != 48 || sets[1].CUID != 0 {
		t.Errorf("set = %+v", sets[1])
	}
	qs, bad, err := parseSysvMsg([]byte(sysvMsg))
	if err != nil || bad != 0 || len(qs) != 1 || qs[0].ID != 0 {
		t.Fatalf("msg: %+v bad %d err %v", qs, bad, err)
	}
}

func TestParseSemCtl(t *testing.T) {
	got, err := parseSemCtl([]byte("32000\t1024000000\t500\t32000\n"))
	if err != nil || got != [4]int64{32000, 1024000000, 500, 32000} {
		t.Errorf("parseSemCtl = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1 2 3", "1 2 3 x", "1 2 3 -4", "1 2 3 4 5"} {
		if _, err := parseSemCtl([]byte(bad)); err == nil {
			t.Errorf("parseSemCtl(%q) accepted", bad)
		}
	}
}

func TestIPCParseUint(t *testing.T) {
	if v, err := ipcParseUint("kernel.shmall", []byte("18446744073692774399\n")); err != nil || v != math.MaxInt64 {
		t.Errorf("shmall default = %d, %v", v, err)
	}
	if v, err := ipcParseUint("kernel.shmmni", []byte("4096\n")); err != nil || v != 4096 {
		t.Errorf("shmmni = %d, %v", v, err)
	}
	if _, err := ipcParseUint("kernel.msgmni", []byte("-1")); err == nil {
		t.Error("negative accepted")
	}
}

func TestIPCWithOther(t *testing.T) {
	seg := Finding{Used: 3, Max: 4096, Unit: "segments"}
	pages := Finding{Used: 5, Max: math.MaxInt64, Unit: "pages"}
	if got := ipcWithOther(seg, pages).Reason; got != "also 5 pages in use, of no set limit" {
		t.Errorf("reason = %q", got)
	}
	if got := ipcWithOther(pages, seg).Reason; got != "also 3 of 4096 segments in use" {
		t.Errorf("reason = %q", got)
	}
}

func TestIPCRemedy(t *testing.T) {
	ipcNotes.Store("ipc ns 4026532178", &ipcNote{pid: 4242, sem: [4]int64{250, 32000, 32, 128}, semOK: true,
		cookies: []int64{1, 2}, leftovers: map[string][]int64{}})
	got := strings.Join(ipcRemedy(Finding{Limit: "ipc.sem", Scope: "ipc ns 4026532178", Used: 128, Max: 128, Unit: "sets"}), "\n")
	for _, want := range []string{"nsenter -t 4242 -i dmsetup udevcomplete_all", "nsenter -t 4242 -i sysctl -w kernel.sem='250 64000 32 256'", "docker run --sysctl kernel.sem='250 64000 32 256'"} {
		if !strings.Contains(got, want) {
			t.Errorf("remedy lacks %q:\n%s", want, got)
		}
	}
	ipcNotes.Store("ipc ns 4026531839 (host)", &ipcNote{host: true, leftovers: map[string][]int64{}})
	got = strings.Join(ipcRemedy(Finding{Limit: "ipc.shm", Scope: "ipc ns 4026531839 (host)", Used: 4096, Max: 4096, Unit: "segments"}), "\n")
	if !strings.Contains(got, "sysctl -w kernel.shmmni=8192") || !strings.Contains(got, "/etc/sysctl.d/") {
		t.Errorf("host shm remedy:\n%s", got)
	}
	got = strings.Join(ipcRemedy(Finding{Limit: "ipc.msg", Scope: "ipc ns 4026531839 (host)", Used: 32768, Max: 32768, Unit: "queues"}), "\n")
	if !strings.Contains(got, "ceiling") {
		t.Errorf("msgmni at IPCMNI:\n%s", got)
	}
}

func FuzzParseSysvIPC(f *testing.F) {
	for _, s := range []string{sysvShm618, sysvShm310, sysvSem, sysvMsg, "", "key\n", "key shmid size cpid nattch uid cuid\n1 2 3 4 5 6 7\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, bad, err := parseSysvShm(b)
		if err == nil && bad < 0 {
			t.Fatal("negative bad count")
		}
		for _, s := range segs {
			if s.Size < 0 {
				t.Fatalf("negative size %+v", s)
			}
		}
		sets, _, _ := parseSysvSem(b)
		for _, s := range sets {
			if s.NSems < 0 {
				t.Fatalf("negative nsems %+v", s)
			}
		}
		parseSysvMsg(b)
		parseSemCtl(b)
		ipcParseUint("x", b)
	})
}

// TestMqueueMounts finds the same mqueue mounts as the whole parse.
func TestMqueueMounts(t *testing.T) {
	table := "22 1 0:21 / /proc rw,nosuid - proc proc rw\n" +
		"30 22 0:26 / /dev/mqueue rw,nosuid,nodev,noexec - mqueue mqueue rw\n" +
		"31 22 0:27 / /mnt/a\\040-\\040mqueue\\040b rw - tmpfs tmpfs rw\n" +
		"32 22 0:28 / /run/ctr/mq rw - mqueue mqueue rw\n" +
		"33 22 0:29 / /x rw - mqueuefs x rw"
	all, err := parseMountInfo(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	var want []Mount
	for _, m := range all {
		if m.FSType == "mqueue" {
			want = append(want, m)
		}
	}
	if got := mqueueMounts([]byte(table)); len(want) != 2 || !reflect.DeepEqual(got, want) {
		t.Errorf("mqueueMounts = %+v, want %+v", got, want)
	}
}
