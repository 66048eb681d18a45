package limits

import (
	"math"
	"reflect"
	"sort"
	"testing"
)

func TestKeysToRead(t *testing.T) {
	user := func(uid int, keys, maxKeys, bytes, maxBytes int64) KeyUser {
		return KeyUser{UID: uid, Keys: keys, QuotaKeys: keys, MaxKeys: maxKeys, QuotaBytes: bytes, MaxBytes: maxBytes}
	}
	// 100 + 5 keys on the host at first.
	users := []KeyUser{
		user(0, 100, 1000000, 5000, 25000000), // root's own view: never read as a uid
		user(1001, 1, 200, 10000, 20000),      // half its bytes
		user(1002, 1, 200, 100, 20000),
		user(1003, 1, 200, 19000, 20000), // fullest, by bytes
		user(1004, 0, 200, 0, 20000),     // nothing to list
		user(1005, 1, 200, 100, 20000),   // as full as 1002: by uid
		user(1006, 1, 200, 100, 20000),
	}
	for _, tt := range []struct {
		name   string
		budget int64
		extra  int64 // keys of the host besides users'
		want   []int
	}{
		{"all within the budget", math.MaxInt64, 0, []int{1001, 1002, 1003, 1005, 1006}},
		{"budget for 4 walks", 4 * 105, 0, []int{1001, 1002, 1003, 1005}},
		{"budget for 1 walk: the 3 fullest", 105, 0, []int{1001, 1002, 1003}},
		{"no budget: the 3 fullest", 0, 0, []int{1001, 1002, 1003}},
		{"budget for 4 walks of a smaller host", 4 * 105, -50, []int{1001, 1002, 1003, 1005, 1006}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			us := append([]KeyUser(nil), users...)
			us[0].Keys += tt.extra
			read, all, listed, cands := keysToRead(us, tt.budget)
			var got []int
			for uid := range read {
				got = append(got, uid)
			}
			sort.Ints(got)
			if !reflect.DeepEqual(got, tt.want) || all != 105+tt.extra || listed != len(tt.want) || cands != 5 {
				t.Errorf("keysToRead = %v, %d keys, %d of %d listed; want %v, %d keys, %d of 5",
					got, all, listed, cands, tt.want, 105+tt.extra, len(tt.want))
			}
		})
	}
}
