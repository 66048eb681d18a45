package fix

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// PruneActions are the opt-in removals of exited docker containers that
// leak.keyrings lists (fix --prune): a container whose keyring is still
// charged while it does not run.
func PruneActions(rep *check.Report) []Action {
	var out []Action
	for _, u := range rep.Findings {
		if u.Limit != "leak.keyrings" || u.Leaked == 0 {
			continue
		}
		n := 0
		for _, c := range u.Consumers {
			if prunable(c) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		out = append(out, Action{Kind: KindCleanup, Limit: "leak.keyrings", Scope: u.Scope,
			Why:  fmt.Sprintf("leak.keyrings %s: %d keyrings of containers that no longer run (%s)", u.Scope, u.Leaked, u.Reason),
			Risk: "the containers and their writable layers are deleted, as docker container prune does; each is inspected right before, and a running one, or one whose keyring is not provably its own, is left",
			Text: fmt.Sprintf("remove the %d exited docker containers that hold them (--prune)", n)})
	}
	return out
}

func prunable(c limits.Consumer) bool {
	return c.Runtime == "docker" && c.Container != "" && c.UID != nil &&
		(c.State == "exited" || c.State == "dead" || c.State == "created")
}

// keyringCheck reports, with nil, that the kernel holds a keyring named
// _ses.<id> owned by uid.
type keyringCheck func(id string, uid int) error

// pruneKeyrings runs leak.keyrings again and removes, through the docker
// daemon the inventory asked, each exited container it lists whose
// keyring provably belongs to it.
func pruneKeyrings(ctx context.Context, h *host.Host, copts check.Options, verify keyringCheck, record func(Entry)) error {
	if copts.Runtimes == nil || copts.Runtimes.DockerHost == "" {
		return fmt.Errorf("pruning needs docker's API (Runtimes.DockerHost)")
	}
	ro := *copts.Runtimes
	if ro.SocketPath == nil {
		// What check.Run dials: the socket under the host root.
		ro.SocketPath = h.RootPath
	}
	copts.Runtimes = &ro
	// Every uid's keyrings, however many keys the host holds: each
	// exited container's keyring is then pruned or refused with its
	// reason, none left out unsaid.
	copts.AllKeys = true
	cs, err := reverify(ctx, h, copts, limits.LeakKeyrings)
	if err != nil {
		return err
	}
	d, err := attrib.DialDocker(ro)
	if err != nil {
		return err
	}
	defer d.Close()
	pruneContainers(ctx, h, d, ro.Timeout, cs, verify, record)
	return nil
}

// pruneContainers removes each exited docker container of cs once it is
// proven to own the keyring it is listed for: the keyring (looked up in
// the kernel again) is owned by the host uid of the container's root or of
// its user, as the daemon reports them; its full id is the one inspected;
// it does not run. Anything short of that is skipped with the reason.
func pruneContainers(ctx context.Context, h *host.Host, d *attrib.Docker, timeout time.Duration, cs []limits.Consumer, verify keyringCheck, record func(Entry)) {
	if timeout <= 0 {
		timeout = attrib.Defaults.Timeout
	}
	seen := map[string]bool{}
	var userns *attrib.DockerUserns
	var usernsErr error
	for _, c := range cs {
		if !prunable(c) || seen[c.Container] {
			continue
		}
		seen[c.Container] = true
		e := Entry{Kind: KindCleanup, Limit: "leak.keyrings", Container: c.Container}
		if !isDockerID(c.Container) {
			e.State, e.Note = StateSkipped, "not a docker container id"
			record(e)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		if userns == nil && usernsErr == nil {
			u, err := d.Userns(cctx)
			userns, usernsErr = &u, err
		}
		info, err := d.Inspect(cctx, c.Container)
		switch {
		case err != nil:
			e.State, e.Note = StateSkipped, err.Error()
		case info.ID != c.Container:
			// docker resolves names and id prefixes too.
			e.State, e.Note = StateSkipped, fmt.Sprintf("the daemon answered for %s, not this id", info.ID)
		case info.Live:
			e.State, e.Note = StateSkipped, "runs again: left"
		case usernsErr != nil:
			e.State, e.Note = StateSkipped, "docker info: "+usernsErr.Error()
		default:
			if why := keyringOwner(h, *userns, info, *c.UID); why != "" {
				e.State, e.Note = StateSkipped, why
			} else if err := verify(c.Container, *c.UID); err != nil {
				e.State, e.Note = StateSkipped, fmt.Sprintf("keyring _ses.%s of uid %d: %v", c.Container, *c.UID, err)
			} else if err := d.Remove(cctx, c.Container); err != nil {
				e.State, e.Note = StateFailed, err.Error()
			} else {
				e.State, e.Note = StateRemoved, info.Name
			}
		}
		cancel()
		record(e)
	}
}

// keyringOwner says why uid cannot be proven to own the session keyring
// of container c, or "" when it is. runc joins the keyring as the
// container's root, before it switches to the container's user: the owner
// is the host uid of one or the other.
func keyringOwner(h *host.Host, u attrib.DockerUserns, c attrib.DockerContainer, uid int) string {
	if u.Rootless {
		return "the daemon is rootless: the host uids of its containers are not known here"
	}
	user, userErr := containerUID(c.User)
	if !u.Remap || c.HostUserns {
		if uid == 0 || (userErr == nil && uid == user) {
			return ""
		}
		switch {
		case userErr != nil:
			return fmt.Sprintf("the keyring is uid %d's; the container's root is uid 0 and its %v", uid, userErr)
		case user == 0:
			return fmt.Sprintf("the keyring is uid %d's, the container runs as root: not its own", uid)
		}
		return fmt.Sprintf("the keyring is uid %d's, the container's root is uid 0 and its user uid %d: not its own", uid, user)
	}
	if uid == u.RootUID {
		return ""
	}
	if userErr != nil {
		return fmt.Sprintf("the keyring is uid %d's; the container's root is uid %d and its %v", uid, u.RootUID, userErr)
	}
	size := subIDRange(h, u.RootUID)
	if user >= size {
		return fmt.Sprintf("the keyring is uid %d's; container uid %d is outside the range of %d uids at %d in /etc/subuid", uid, user, size, u.RootUID)
	}
	if uid != u.RootUID+user {
		return fmt.Sprintf("the keyring is uid %d's, the container's root is uid %d and its user uid %d: not its own", uid, u.RootUID, u.RootUID+user)
	}
	return ""
}

// containerUID is the uid of a Config.User: "" is root, "N" and "N:G" are
// N. A user name would need the container's /etc/passwd, which a stopped
// container does not have mounted.
func containerUID(user string) (int, error) {
	if user == "" {
		return 0, nil
	}
	name, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(name)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("user %q, a name not resolved for a stopped container", user)
	}
	return n, nil
}

// subIDRange is the length of the /etc/subuid range that starts at start
// (docker maps container uids from 0 up onto it), 0 when there is none.
func subIDRange(h *host.Host, start int) int {
	b, err := os.ReadFile(h.RootPath("/etc/subuid"))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) != 3 {
			continue
		}
		s, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && s == start && n > 0 {
			return n
		}
	}
	return 0
}

func isDockerID(id string) bool {
	return len(id) == 64 && strings.Trim(id, "0123456789abcdef") == ""
}
