// Command tsdb opens a Prometheus TSDB and writes one sample, for size.sh.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

func main() {
	fmt.Fprintln(os.Stderr, time.Now(), len(os.Args))
	db, err := tsdb.Open(os.Args[1], nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		panic(err)
	}
	app := db.Appender(context.Background())
	app.Append(0, labels.FromStrings("__name__", "x"), time.Now().UnixMilli(), 1)
	app.Commit()
	q, _ := db.Querier(0, time.Now().UnixMilli())
	q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "x"))
	db.Close()
}
