// Command bbolt opens a bbolt file and writes one key, for size.sh.
package main

import (
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

func main() {
	fmt.Fprintln(os.Stderr, time.Now(), len(os.Args))
	db, err := bolt.Open(os.Args[1], 0o600, nil)
	if err != nil {
		panic(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("x"))
		return b.Put([]byte("k"), []byte("v"))
	})
	db.View(func(tx *bolt.Tx) error { tx.Bucket([]byte("x")).Get([]byte("k")); return nil })
	db.Close()
}
