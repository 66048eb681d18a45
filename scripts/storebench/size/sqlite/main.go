// Command sqlite opens a SQLite database and writes one row, for size.sh.
package main

import (
	"database/sql"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	fmt.Fprintln(os.Stderr, time.Now(), len(os.Args))
	db, err := sql.Open("sqlite", os.Args[1])
	if err != nil {
		panic(err)
	}
	db.Exec(`CREATE TABLE IF NOT EXISTS x (k TEXT, v INTEGER)`)
	db.Exec(`INSERT INTO x VALUES ('k', 1)`)
	db.QueryRow(`SELECT v FROM x`).Scan(new(int))
	db.Close()
}
