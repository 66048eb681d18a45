package limits

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// keyUsersHost is /proc/key-users on a 6.18 kernel, read as root while
// uid 100123 held one session keyring (_ses.4f1c0b1e9a2d). The kernel prints
// "%5u: %5d %d/%d %d/%d %d/%d", so a uid wider than 5 digits has no padding.
const keyUsersHost = "    0:     9 8/8 3/1000000 40/25000000\n" +
	"100123:     1 1/1 1/200 18/20000\n"

// keyUsersJenkins is the key-users line of the Jenkins agent in the field
// report (seeds/000): uid 1001, docker userns-remapped, 243 session keyrings
// against maxkeys 1000000 and maxbytes 20000. The report gives the keys and
// the limits; the bytes are 243 x 70, what "_ses.<64 hex id>" and its NUL
// are charged each.
const keyUsersJenkins = " 1001:   243 243/243 243/1000000 17010/20000\n"

func TestParseKeyUsers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []KeyUser
		wantErr string // substring; "" for no error
	}{
		{"host", keyUsersHost, []KeyUser{
			{UID: 0, Usage: 9, Keys: 8, Instant: 8, QuotaKeys: 3, MaxKeys: 1000000, QuotaBytes: 40, MaxBytes: 25000000},
			{UID: 100123, Usage: 1, Keys: 1, Instant: 1, QuotaKeys: 1, MaxKeys: 200, QuotaBytes: 18, MaxBytes: 20000},
		}, ""},
		{"jenkins", keyUsersJenkins, []KeyUser{
			{UID: 1001, Usage: 243, Keys: 243, Instant: 243, QuotaKeys: 243, MaxKeys: 1000000, QuotaBytes: 17010, MaxBytes: 20000},
		}, ""},
		{"blank lines skipped, no trailing newline", "\n   \n 1000:    12 11/11 11/200 1203/20000", []KeyUser{
			{UID: 1000, Usage: 12, Keys: 11, Instant: 11, QuotaKeys: 11, MaxKeys: 200, QuotaBytes: 1203, MaxBytes: 20000},
		}, ""},
		{"empty", "", nil, ""},
		{
			"bad second line keeps the first",
			"    0:     9 8/8 3/1000000 40/25000000\n 1000:    12 11/11 11/200\n",
			[]KeyUser{{UID: 0, Usage: 9, Keys: 8, Instant: 8, QuotaKeys: 3, MaxKeys: 1000000, QuotaBytes: 40, MaxBytes: 25000000}},
			"key-users line 2: want 4 fields after the uid, have 3",
		},
		{"no colon", "1000 12 11/11 11/200 1203/20000\n", nil, "key-users line 1: no uid in"},
		{"uid not a number", "root:    12 11/11 11/200 1203/20000\n", nil, "key-users line 1: uid:"},
		{"usage not a number", " 1000:    x 11/11 11/200 1203/20000\n", nil, "key-users line 1: usage:"},
		{"pair without slash", " 1000:    12 11 11/200 1203/20000 \n", nil, `field "11": want a/b`},
		{"pair not numbers", " 1000:    12 11/11 a/200 1203/20000\n", nil, `parsing "a"`},
		{"five fields", " 1000:    12 11/11 11/200 1203/20000 7\n", nil, "have 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKeyUsers(strings.NewReader(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseKeyUsers =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseKeyUsersSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/key-users")
	if err != nil {
		t.Skipf("no /proc/key-users: %v", err)
	}
	us, err := parseKeyUsers(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != strings.Count(string(b), "\n") {
		t.Errorf("%d users from %d lines", len(us), strings.Count(string(b), "\n"))
	}
	for _, u := range us {
		if u.MaxKeys <= 0 || u.MaxBytes <= 0 || u.QuotaKeys > u.Keys {
			t.Errorf("implausible %+v", u)
		}
	}
}

// keysHost is /proc/keys on a 6.18 kernel: root's own keys, a user key whose
// description has spaces, and (read as uid 100123) that uid's session
// keyring. The asymmetric line is the shape of a secure boot certificate:
// the type is cut to 9 characters and the description itself holds ": ".
const keysHost = `04f5be4f I--Q---     1 perm 0c030000     0 65534 keyring   .user_reg: 2
057dc674 I--Q---     1 perm 3f030000     0     0 keyring   _ses: 1
07161a30 I------     1 perm 0f0b0000     0     0 keyring   .blacklist: empty
162eb8ae I--Q---     1 perm 3f010000     0     0 user      my key with spaces: 7
2208dec7 I--Q---     1 perm 3f130000 100123 100123 keyring   _ses.4f1c0b1e9a2d: empty
33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1
0a9d9d8c I------     1 perm 1f010000     0     0 asymmetri Debian Secure Boot CA: 6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1: X509.rsa 4c6c0d1f []
1c4f0e43 I--Q---     1   4w 3f010000  1001  1001 keyring   _ses.b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b: empty
`

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Key
	}{
		{"host", keysHost, []Key{
			{ID: "04f5be4f", Flags: "I--Q---", UID: 0, GID: 65534, Type: "keyring", Description: ".user_reg"},
			{ID: "057dc674", Flags: "I--Q---", UID: 0, GID: 0, Type: "keyring", Description: "_ses"},
			{ID: "07161a30", Flags: "I------", UID: 0, GID: 0, Type: "keyring", Description: ".blacklist"},
			{ID: "162eb8ae", Flags: "I--Q---", UID: 0, GID: 0, Type: "user", Description: "my key with spaces"},
			{ID: "2208dec7", Flags: "I--Q---", UID: 100123, GID: 100123, Type: "keyring", Description: "_ses.4f1c0b1e9a2d"},
			{ID: "33bdefef", Flags: "I--Q---", UID: 0, GID: 65534, Type: "keyring", Description: "_uid_ses.0"},
			{ID: "0a9d9d8c", Flags: "I------", UID: 0, GID: 0, Type: "asymmetri", Description: "Debian Secure Boot CA: 6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1"},
			{ID: "1c4f0e43", Flags: "I--Q---", UID: 1001, GID: 1001, Type: "keyring", Description: "_ses.b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b"},
		}},
		{"tabs between fields: skipped", "162eb8ae\tI--Q---\t1\tperm\t3f010000\t0\t0\tuser\tk: 7\n", nil},
		{"a timeout, a wide uid, a long type", "162eb8ae I--Q---     1   5d 3f010000 100123  1001 .request_ k: 7\n", []Key{
			{ID: "162eb8ae", Flags: "I--Q---", UID: 100123, GID: 1001, Type: ".request_", Description: "k"},
		}},
		{"a uid from 2^31 up, printed through %d", "162eb8ae I--Q---     1 perm 3f010000    -2 -2147483648 user      k: 7\n", []Key{
			{ID: "162eb8ae", Flags: "I--Q---", UID: 4294967294, GID: 2147483648, Type: "user", Description: "k"},
		}},
		{"uid - alone: skipped", "162eb8ae I--Q---     1 perm 3f010000     -     0 user      k: 7\n", nil},
		{"a description that starts with spaces", "162eb8ae I--Q---     1 perm 3f010000     0     0 user        k: 7\n", []Key{
			{ID: "162eb8ae", Flags: "I--Q---", UID: 0, GID: 0, Type: "user", Description: "  k"},
		}},
		{"short serial: skipped", "62eb8ae I--Q---     1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"upper-case serial: skipped", "162EB8AE I--Q---     1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"serial 0: skipped", "00000000 I--Q---     1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"serial above int32: skipped", "80000000 I--Q---     1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"flag out of place: skipped", "162eb8ae IQ-----     1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"eight flags: skipped", "162eb8ae I--Q----     1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"usage misaligned: skipped", "162eb8ae I--Q---  1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"usage negative: skipped", "162eb8ae I--Q---    -1 perm 3f010000     0     0 user      k: 7\n", nil},
		{"timeout not one: skipped", "162eb8ae I--Q---     1 soon 3f010000     0     0 user      k: 7\n", nil},
		{"permissions not hex: skipped", "162eb8ae I--Q---     1 perm 3f01000g     0     0 user      k: 7\n", nil},
		{"permissions short: skipped", "162eb8ae I--Q---     1 perm 3f0100     0     0 user      k: 7\n", nil},
		{"uid misaligned: skipped", "162eb8ae I--Q---     1 perm 3f010000 0     0 user      k: 7\n", nil},
		{"uid beyond int32: skipped", "162eb8ae I--Q---     1 perm 3f010000 4294967294     0 user      k: 7\n", nil},
		{"type not padded: skipped", "162eb8ae I--Q---     1 perm 3f010000     0     0 user k: 7\n", nil},
		{"type with a control byte: skipped", "162eb8ae I--Q---     1 perm 3f010000     0     0 us\x1br      k: 7\n", nil},
		{"a serial on two lines: both skipped",
			"162eb8ae I--Q---     1 perm 3f010000     0     0 user      k: 7\n" +
				"162eb8ae I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.fake: 1\n" +
				"2208dec7 I--Q---     1 perm 3f130000  1001  1001 keyring   _ses.real: empty\n",
			[]Key{{ID: "2208dec7", Flags: "I--Q---", UID: 1001, GID: 1001, Type: "keyring", Description: "_ses.real"}}},
		{"description ends in a bare colon", "162eb8ae I--Q---     1 perm 3f010000     0     0 user      k:\n", []Key{
			{ID: "162eb8ae", Flags: "I--Q---", UID: 0, GID: 0, Type: "user", Description: "k"},
		}},
		{"no summary", "162eb8ae I--Q---     1 perm 3f010000     0     0 user      k\n", []Key{
			{ID: "162eb8ae", Flags: "I--Q---", UID: 0, GID: 0, Type: "user", Description: "k"},
		}},
		{"eight fields: skipped", "162eb8ae I--Q---     1 perm 3f010000     0     0 user\n", nil},
		{"uid not a number: skipped", "162eb8ae I--Q---     1 perm 3f010000  root     0 user      k: 7\n", nil},
		{"gid not a number: skipped", "162eb8ae I--Q---     1 perm 3f010000     0  root user      k: 7\n", nil},
		{"empty", "", nil},
		{
			// The kernel prints descriptions unescaped: a description with a
			// newline (add_key(2) accepts one) forges a line of its own, of
			// the right shape: reading alone cannot tell it
			// (TestVerifyKeys: the kernel can).
			"newline in a description forges a line",
			"270e987a I--Q---     1 perm 3f010000     0     0 user      evil\n" +
				"1234abcd I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.fake: 1\n",
			[]Key{
				{ID: "270e987a", Flags: "I--Q---", UID: 0, GID: 0, Type: "user", Description: "evil"},
				{ID: "1234abcd", Flags: "I--Q---", UID: 1001, GID: 1001, Type: "keyring", Description: "_ses.fake"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseKeys(strings.NewReader(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseKeys =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestVerifyKeys feeds verifyKeys the view of a uid in which another uid's
// key description, "evil\n" and a line of the shape of /proc/keys, forges
// a session keyring of uid 1001; the kernel describes each serial as
// keyctl(2) would.
func TestVerifyKeys(t *testing.T) {
	const view = "04f5be4f I--Q---     1 perm 3f030000  1001  1001 keyring   _ses.real: a: 1\n" +
		"1234abcd I--Q---     1 perm 3f3f3f3f  1002  1002 user      evil\n" +
		"1234abce I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.victim: 1\n" +
		"2208dec7 I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.mine: empty\n" +
		"3208dec7 I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.other: empty\n" +
		"4208dec7 ---Q-N-     1 perm 3f010000  1001  1001 user      neg: ative\n" +
		"5208dec7 I-DQ---     1 expd 3f010000  1001  1001 user      old: 7\n"
	kernel := map[int32]string{
		0x04f5be4f: "keyring;1001;1001;3f030000;_ses.real: a",
		0x1234abcd: "user;1002;1002;3f3f3f3f;evil\n1234abce I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.victim",
		0x2208dec7: "keyring;1001;1001;3f010000;_ses.mine",
		0x3208dec7: "keyring;1003;1001;3f010000;_ses.other", // a key another uid owns now
		0x4208dec7: "user;1001;1001;3f010000;neg: ative",    // negative: no summary
	}
	describe := func(serial int32) ([]byte, error) {
		if d, ok := kernel[serial]; ok {
			return []byte(d), nil
		}
		if serial == 0x5208dec7 {
			return nil, unix.EKEYEXPIRED
		}
		return nil, unix.ENOKEY
	}
	got, dropped, err := verifyKeys(parseKeyLines(strings.NewReader(view)), describe)
	if err != nil {
		t.Fatal(err)
	}
	want := []Key{
		{ID: "04f5be4f", Flags: "I--Q---", UID: 1001, GID: 1001, Type: "keyring", Description: "_ses.real: a"},
		{ID: "2208dec7", Flags: "I--Q---", UID: 1001, GID: 1001, Type: "keyring", Description: "_ses.mine"},
		{ID: "4208dec7", Flags: "---Q-N-", UID: 1001, GID: 1001, Type: "user", Description: "neg: ative"},
	}
	if !reflect.DeepEqual(got, want) || dropped != 3 {
		t.Errorf("verifyKeys = %d dropped,\n%+v\nwant 3 dropped,\n%+v", dropped, got, want)
	}

	// keyctl refused altogether (a seccomp profile): nothing is believed.
	got, dropped, err = verifyKeys(parseKeyLines(strings.NewReader(view)), func(int32) ([]byte, error) { return nil, unix.EPERM })
	if err == nil || got != nil || dropped != 7 {
		t.Errorf("keyctl refused: %v, %d dropped, %v; want an error, all 7 dropped, none kept", got, dropped, err)
	}
}

func TestKeyInQuota(t *testing.T) {
	keys := parseKeys(strings.NewReader(keysHost))
	var in []string
	for _, k := range keys {
		if k.InQuota() {
			in = append(in, k.ID)
		}
	}
	want := []string{"04f5be4f", "057dc674", "162eb8ae", "2208dec7", "33bdefef", "1c4f0e43"}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("in quota: %v, want %v", in, want)
	}
}

// mountinfoHost is the head of /proc/self/mountinfo on a cgroup v1 host
// (6.18 kernel), then mounts made in a private mount namespace on it: a
// tmpfs with an empty source, a mount point and source with spaces, a
// source with a tab.
const mountinfoHost = `22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,nr_inodes=3083615,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
63 43 0:39 / /tmp/mtest rw,relatime - tmpfs  rw
64 63 0:40 / /tmp/mtest/a\040b rw,relatime - tmpfs src\040with\040space rw
65 63 0:41 / /tmp/mtest/c rw,relatime - tmpfs tab\011src rw,size=1024k
`

func TestParseMountInfo(t *testing.T) {
	got, err := parseMountInfo(strings.NewReader(mountinfoHost))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{ID: 22, Parent: 27, Device: "0:21", Root: "/", MountPoint: "/proc", Options: "rw,relatime", FSType: "proc", Source: "proc", Super: "rw"},
		{ID: 24, Parent: 27, Device: "0:6", Root: "/", MountPoint: "/dev", Options: "rw,relatime", FSType: "devtmpfs", Source: "devtmpfs", Super: "rw,size=12334460k,nr_inodes=3083615,mode=755"},
		{ID: 27, Parent: 1, Device: "254:0", Root: "/", MountPoint: "/", Options: "rw,relatime", FSType: "ext4", Source: "/dev/vda", Super: "rw,discard,resv_strict,resuid=65534,resgid=65534"},
		{ID: 31, Parent: 23, Device: "0:28", Root: "/", MountPoint: "/sys/fs/cgroup", Options: "rw,relatime", FSType: "tmpfs", Source: "tmpfs", Super: "rw,mode=755"},
		{ID: 35, Parent: 31, Device: "0:32", Root: "/", MountPoint: "/sys/fs/cgroup/memory", Options: "rw,relatime", FSType: "cgroup", Source: "cgroup", Super: "rw,memory"},
		{ID: 41, Parent: 31, Device: "0:38", Root: "/", MountPoint: "/sys/fs/cgroup/unified", Options: "rw,relatime", FSType: "cgroup2", Source: "cgroup2", Super: "rw"},
		{ID: 63, Parent: 43, Device: "0:39", Root: "/", MountPoint: "/tmp/mtest", Options: "rw,relatime", FSType: "tmpfs", Source: "", Super: "rw"},
		{ID: 64, Parent: 63, Device: "0:40", Root: "/", MountPoint: "/tmp/mtest/a b", Options: "rw,relatime", FSType: "tmpfs", Source: "src with space", Super: "rw"},
		{ID: 65, Parent: 63, Device: "0:41", Root: "/", MountPoint: "/tmp/mtest/c", Options: "rw,relatime", FSType: "tmpfs", Source: "tab\tsrc", Super: "rw,size=1024k"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountInfo =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseMountInfoLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Mount
		ok   bool
	}{
		{"proc(5) example", `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`,
			Mount{ID: 36, Parent: 35, Device: "98:0", Root: "/mnt1", MountPoint: "/mnt2", Options: "rw,noatime", FSType: "ext3", Source: "/dev/root", Super: "rw,errors=continue"}, true},
		{"systemd host, two optional fields", `25 1 8:1 / / rw,relatime shared:1 master:2 - ext4 /dev/sda1 rw,errors=remount-ro`,
			Mount{ID: 25, Parent: 1, Device: "8:1", Root: "/", MountPoint: "/", Options: "rw,relatime", FSType: "ext4", Source: "/dev/sda1", Super: "rw,errors=remount-ro"}, true},
		{"kubelet secret volume", `1234 25 0:53 / /var/lib/kubelet/pods/79fe803c-072f-11e9-90ca-525400090c71/volumes/kubernetes.io~secret/default-token-x2k9v rw,relatime shared:456 - tmpfs tmpfs rw,size=16310692k`,
			Mount{ID: 1234, Parent: 25, Device: "0:53", Root: "/", MountPoint: "/var/lib/kubelet/pods/79fe803c-072f-11e9-90ca-525400090c71/volumes/kubernetes.io~secret/default-token-x2k9v", Options: "rw,relatime", FSType: "tmpfs", Source: "tmpfs", Super: "rw,size=16310692k"}, true},
		{"network namespace bind mount", `611 29 0:4 net:[4026532281] /run/netns/cni-1c2d rw shared:245 - nsfs nsfs rw`,
			Mount{ID: 611, Parent: 29, Device: "0:4", Root: "net:[4026532281]", MountPoint: "/run/netns/cni-1c2d", Options: "rw", FSType: "nsfs", Source: "nsfs", Super: "rw"}, true},
		{"empty source, no optional fields", `63 43 0:39 / /tmp/mtest rw,relatime - tmpfs  rw`,
			Mount{ID: 63, Parent: 43, Device: "0:39", Root: "/", MountPoint: "/tmp/mtest", Options: "rw,relatime", FSType: "tmpfs", Source: "", Super: "rw"}, true},
		{"empty source with an optional field", `63 43 0:39 / /tmp/mtest rw,relatime shared:7 - tmpfs  rw`,
			Mount{ID: 63, Parent: 43, Device: "0:39", Root: "/", MountPoint: "/tmp/mtest", Options: "rw,relatime", FSType: "tmpfs", Source: "", Super: "rw"}, true},
		{"empty source, cgroup hierarchy", `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup  rw,memory`,
			Mount{ID: 35, Parent: 31, Device: "0:32", Root: "/", MountPoint: "/sys/fs/cgroup/memory", Options: "rw,relatime", FSType: "cgroup", Source: "", Super: "rw,memory"}, true},
		// The kernel leaves other whitespace raw: a non-breaking space
		// (mount on "/tmp/mt2/My\u00a0Disk") and a vertical tab.
		{"non-breaking space in the mount point", "3341 3321 0:970 / /tmp/mt2/My\u00a0Disk rw,relatime - tmpfs nbsp rw",
			Mount{ID: 3341, Parent: 3321, Device: "0:970", Root: "/", MountPoint: "/tmp/mt2/My\u00a0Disk", Options: "rw,relatime", FSType: "tmpfs", Source: "nbsp", Super: "rw"}, true},
		{"vertical tab in the mount point", "2039 1991 0:604 / /tmp/mt2/v\vt rw,relatime - tmpfs vt rw",
			Mount{ID: 2039, Parent: 1991, Device: "0:604", Root: "/", MountPoint: "/tmp/mt2/v\vt", Options: "rw,relatime", FSType: "tmpfs", Source: "vt", Super: "rw"}, true},
		{"escaped backslash and newline", `70 27 0:50 / /mnt/a\134b\012c rw - tmpfs x rw`,
			Mount{ID: 70, Parent: 27, Device: "0:50", Root: "/", MountPoint: "/mnt/a\\b\nc", Options: "rw", FSType: "tmpfs", Source: "x", Super: "rw"}, true},
		{"source is a dash (mount -t tmpfs - /mnt/-)", `70 27 0:50 / /mnt/- rw shared:1 - tmpfs - rw`,
			Mount{ID: 70, Parent: 27, Device: "0:50", Root: "/", MountPoint: "/mnt/-", Options: "rw", FSType: "tmpfs", Source: "-", Super: "rw"}, true},
		{"no super options", `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root`,
			Mount{ID: 36, Parent: 35, Device: "98:0", Root: "/mnt1", MountPoint: "/mnt2", Options: "rw,noatime", FSType: "ext3", Source: "/dev/root"}, true},
		{"no separator", `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw`, Mount{}, false},
		{"no source", `36 35 98:0 /mnt1 /mnt2 rw,noatime - ext3`, Mount{}, false},
		{"too few fields before the separator", `36 35 98:0 /mnt2 rw - ext3 /dev/root rw`, Mount{}, false},
		{"id not a number", `x 35 98:0 /mnt1 /mnt2 rw,noatime - ext3 /dev/root rw`, Mount{}, false},
		{"parent not a number", `36 y 98:0 /mnt1 /mnt2 rw,noatime - ext3 /dev/root rw`, Mount{}, false},
		{"empty", ``, Mount{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseMountInfoLine(tt.line)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseMountInfoLine =\n%+v, %v\nwant\n%+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseMountInfoSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo: %v", err)
	}
	ms, err := parseMountInfo(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); len(ms) != n {
		t.Errorf("%d mounts from %d lines", len(ms), n)
	}
	root := false
	for _, m := range ms {
		root = root || m.MountPoint == "/"
		if m.FSType == "" || m.Super == "" {
			t.Errorf("mount %d: fstype %q super %q", m.ID, m.FSType, m.Super)
		}
	}
	if !root {
		t.Error("no mount on /")
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/a\040b`, "/a b"},
		{`tab\011src`, "tab\tsrc"},
		{`a\012b`, "a\nb"},
		{`a\134b`, `a\b`},
		{`\040\040`, "  "},
		{`plain`, "plain"},
		{`a\04`, `a\04`},   // too short: kept
		{`a\9xy`, `a\9xy`}, // not octal: kept
		{`a\400`, `a\400`}, // above 255: kept
		{`a\377`, "a\xff"},
		{`\`, `\`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := unescapeOctal(tt.in); got != tt.want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseFileNr(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    FileNr
		wantErr string
	}{
		// /proc/sys/fs/file-nr on a 6.18 kernel: tab separated.
		{"host", "423\t0\t2466170\n", FileNr{423, 0, 2466170}, ""},
		{"spaces", "9344 0 9223372036854775807", FileNr{9344, 0, 9223372036854775807}, ""},
		{"two fields", "423\t0\n", FileNr{}, "file-nr: want 3 fields, have 2"},
		{"four fields", "423\t0\t2466170\t1\n", FileNr{}, "file-nr: want 3 fields, have 4"},
		{"empty", "", FileNr{}, "file-nr: want 3 fields, have 0"},
		{"not a number", "423\t0\tmax\n", FileNr{}, `file-nr: strconv.ParseInt: parsing "max"`},
		{"overflow", "423\t0\t9223372036854775808\n", FileNr{}, "value out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFileNr(strings.NewReader(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseFileNr = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseFileNrSelf(t *testing.T) {
	f, err := os.Open("/proc/sys/fs/file-nr")
	if err != nil {
		t.Skipf("no file-nr: %v", err)
	}
	defer f.Close()
	nr, err := parseFileNr(f)
	if err != nil {
		t.Fatal(err)
	}
	// This test holds f open, so at least one handle is allocated.
	if nr.Allocated < 1 || nr.Max < 1 || nr.Free != 0 {
		t.Errorf("implausible %+v", nr)
	}
}

func TestParseFlatKeyed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]int64
	}{
		// cgroup.stat of a v2 root on a 6.18 kernel.
		{"cgroup.stat", "nr_descendants 0\nnr_subsys_perf_event 1\nnr_subsys_hugetlb 1\nnr_dying_descendants 0\nnr_dying_subsys_perf_event 0\nnr_dying_subsys_hugetlb 0\n",
			map[string]int64{"nr_descendants": 0, "nr_subsys_perf_event": 1, "nr_subsys_hugetlb": 1, "nr_dying_descendants": 0, "nr_dying_subsys_perf_event": 0, "nr_dying_subsys_hugetlb": 0}},
		{"cgroup.stat with dying", "nr_descendants 112\nnr_dying_descendants 4031\n", map[string]int64{"nr_descendants": 112, "nr_dying_descendants": 4031}},
		{"pids.events", "max 17\n", map[string]int64{"max": 17}},
		{"no trailing newline, padded", "  low 0\nhigh  3  ", map[string]int64{"low": 0, "high": 3}},
		{"value not a number: skipped", "max x\noom 2\n", map[string]int64{"oom": 2}},
		{"two values: skipped", "a 1 2\n", map[string]int64{}},
		{"key alone: skipped", "nr_descendants\n", map[string]int64{}},
		{"tab separated: skipped", "nr_descendants\t5\n", map[string]int64{}},
		{"empty", "", map[string]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseFlatKeyed([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseFlatKeyed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadCgroupInt(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    int64
		wantErr bool
	}{
		{"max", "max\n", -1, false},
		{"number", "5\n", 5, false},
		{"zero", "0\n", 0, false},
		{"no newline", "4096", 4096, false},
		{"empty", "", 0, true},
		{"word", "unlimited\n", 0, true},
		{"two values", "5 6\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readCgroupInt(p)
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Errorf("readCgroupInt(%q) = %d, %v; want %d, error %v", tt.content, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := readCgroupInt(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestReadCgroupIntSys(t *testing.T) {
	const p = "/sys/fs/cgroup/unified/cgroup.max.depth"
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no v2 hierarchy at /sys/fs/cgroup/unified: %v", err)
	}
	v, err := readCgroupInt(p)
	if err != nil || v < -1 {
		t.Errorf("readCgroupInt(%s) = %d, %v", p, v, err)
	}
}

func TestOldKmemKernel(t *testing.T) {
	tests := []struct {
		release string
		want    bool
	}{
		{"3.10.0-1160.el7.x86_64", true}, // CentOS 7, the kmem leak era
		{"2.6.32-754.el6.x86_64", true},
		{"4.2.0-27-generic", true},
		{"4.02", true},
		{"4.3.0", false},
		{"4.4.0-116-generic", false}, // the containerd#2421 node
		{"6.18.44-fc-v669", false},
		{"10.0", false},
		{"4", false},
		{"4.", false},
		{"x.2", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := oldKmemKernel(tt.release); got != tt.want {
			t.Errorf("oldKmemKernel(%q) = %v, want %v", tt.release, got, tt.want)
		}
	}
}

func TestFifoTaskID(t *testing.T) {
	tests := []struct{ name, want string }{
		{"test.32583-stderr", "test.32583"}, // containerd#2421
		{"test.32583-stdin", "test.32583"},
		{"manual-stdout", "manual"},
		{"b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b-stdin", "b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b"},
		{"a-stdout-stderr", "a-stdout"},
		{"-stdin", ""},
		{"stdin", ""},
		{"test-stdin.lock", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(fifoTaskID([]byte(tt.name))); got != tt.want {
			t.Errorf("fifoTaskID(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMountOwner(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for mp, want := range map[string]Consumer{
		"/var/lib/docker/containers/" + id + "/mounts/shm":                                                 {Name: "/dev/shm of container", Container: id},
		"/var/lib/docker/1001.1001/containers/" + id + "/mounts/shm":                                       {Name: "/dev/shm of container", Container: id},
		"/run/containerd/io.containerd.grpc.v1.cri/sandboxes/" + id + "/shm":                               {Name: "/dev/shm of pod sandbox", Container: id},
		"/var/lib/kubelet/pods/5a1e0c3e-2b7d-4c4e-9a51-8f1d3c2b7e60/volumes/kubernetes.io~empty-dir/cache": {Name: "emptyDir cache of pod", PodUID: "5a1e0c3e-2b7d-4c4e-9a51-8f1d3c2b7e60"},
	} {
		got := mountOwner(mp)
		if got == nil || *got != want {
			t.Errorf("mountOwner(%s) = %+v, want %+v", mp, got, want)
		}
	}
	for _, mp := range []string{"/", "/run", "/dev/shm", "/var/lib/docker/containers"} {
		if got := mountOwner(mp); got != nil {
			t.Errorf("mountOwner(%s) = %+v, want none", mp, got)
		}
	}
}
