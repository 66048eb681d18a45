package limits

// ID names a limit: the "limit" of every row of check -o json, the
// argument of --only. Every ID is one of the constants below, each the
// ID of exactly one limit of the catalog (TestIDsInCatalog).
type ID string

// String returns the ID as printed.
func (id ID) String() string { return string(id) }

// The catalog's limit IDs.
const (
	AIO              ID = "aio"
	BridgePorts      ID = "bridge.ports"
	Cgroups          ID = "cgroups"
	CgroupsDying     ID = "cgroups.dying"
	Conntrack        ID = "conntrack"
	Disk             ID = "disk"
	Epoll            ID = "epoll"
	FanotifyGroups   ID = "fanotify.groups"
	FanotifyMarks    ID = "fanotify.marks"
	Files            ID = "files"
	FilesProcess     ID = "files.process"
	Inodes           ID = "inodes"
	InotifyInstances ID = "inotify.instances"
	InotifyWatches   ID = "inotify.watches"
	IPCMsg           ID = "ipc.msg"
	IPCSem           ID = "ipc.sem"
	IPCShm           ID = "ipc.shm"
	KeysBytes        ID = "keys.bytes"
	KeysCount        ID = "keys.count"
	LeakCgroups      ID = "leak.cgroups"
	LeakFifo         ID = "leak.fifo"
	LeakKeyrings     ID = "leak.keyrings"
	Mapcount         ID = "mapcount"
	Mounts           ID = "mounts"
	Mqueue           ID = "mqueue"
	Namespaces       ID = "namespaces"
	Neighbour        ID = "neighbour"
	NProc            ID = "nproc"
	Pids             ID = "pids"
	Ports            ID = "ports"
	Ptys             ID = "ptys"
	Quota            ID = "quota"
	QuotaInodes      ID = "quota.inodes"
	Threads          ID = "threads"
	Userns           ID = "userns"
)

// IDs are every constant above, in the order they are declared.
var IDs = []ID{AIO, BridgePorts, Cgroups, CgroupsDying, Conntrack, Disk, Epoll, FanotifyGroups, FanotifyMarks, Files, FilesProcess, Inodes, InotifyInstances, InotifyWatches, IPCMsg, IPCSem, IPCShm, KeysBytes, KeysCount, LeakCgroups, LeakFifo, LeakKeyrings, Mapcount, Mounts, Mqueue, Namespaces, Neighbour, NProc, Pids, Ports, Ptys, Quota, QuotaInodes, Threads, Userns}
