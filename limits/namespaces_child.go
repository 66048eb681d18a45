package limits

// The limits of child user namespaces, read inside them by a forked reader that executes nothing (host.ReadInUserNamespace).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// readChildMaxes reads the limits of the child user namespaces that hold
// something, as root on the live host: the values by kind, per namespace.
func (t *nsTree) readChildMaxes(accs map[nsLevel]*nsAcc, have [census.NSKinds]bool) (map[uint64]map[int]int64, error) {
	out := map[uint64]map[int]int64{}
	want := map[uint64]int64{}
	for l, a := range accs {
		if l.level != 0 && have[l.kind] {
			want[l.level] += a.used
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	if !t.env.Live {
		return out, errors.New("this is not the running kernel")
	}
	levels := make([]uint64, 0, len(want))
	for l := range want {
		levels = append(levels, l)
	}
	sort.Slice(levels, func(i, j int) bool {
		if want[levels[i]] != want[levels[j]] {
			return want[levels[i]] > want[levels[j]]
		}
		return levels[i] < levels[j]
	})
	var lastErr error
	if len(levels) > nsChildReads {
		lastErr = fmt.Errorf("only the %d busiest of %d were read", nsChildReads, len(levels))
		levels = levels[:nsChildReads]
	}
	files := make([]string, census.NSKinds)
	for k := range files {
		files[k] = t.env.Host.ProcPath("sys", "user", nsSysctl(k))
	}
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, l := range levels {
		n := t.users[l]
		if n == nil || !n.live {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(l uint64, ref nsRef) {
			defer wg.Done()
			defer func() { <-sem }()
			vals, err := readUserSysctlsIn(t.env.Ctx, t.env.Host, ref, files)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = fmt.Errorf("user ns %d: %w", l, err)
				if !t.env.Root {
					lastErr = fmt.Errorf("%w (run as root)", lastErr)
				}
				return
			}
			out[l] = vals
		}(l, n.ref)
	}
	wg.Wait()
	return out, lastErr
}

// readUserSysctlsIn reads /proc/sys/user inside the user namespace, by a
// forked child of this process that never executes anything there
// (host.ReadInUserNamespace says why that matters).
func readUserSysctlsIn(ctx context.Context, h *host.Host, ref nsRef, files []string) (map[int]int64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	fd, err := ref.open()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	ctx, cancel := context.WithTimeout(ctx, nsReadTimeout)
	defer cancel()
	got, err := h.ReadInUserNamespace(ctx, fd, files...)
	vals := map[int]int64{}
	for path, b := range got {
		for k, v := range parseUserSysctls([]byte(path + ":" + string(b))) {
			vals[k] = v
		}
	}
	if len(vals) == 0 {
		if err == nil {
			err = errors.New("no values")
		}
		return nil, err
	}
	return vals, nil
}

// parseUserSysctls parses grep -H output, "/proc/sys/user/max_net_namespaces:4",
// into values by namespace kind.
func parseUserSysctls(b []byte) map[int]int64 {
	out := map[int]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		path, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := path[strings.LastIndexByte(path, '/')+1:]
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			continue
		}
		for k := 0; k < census.NSKinds; k++ {
			if name == nsSysctl(k) {
				out[k] = v
			}
		}
	}
	return out
}
