// Command gen writes the example feature repo's sample data into a directory: daily user
// activity (data/user_activity.parquet) and churn labels (data/labels.parquet). `quiver init`
// writes the same data; use this to regenerate it with other sizes.
//
//	go run ./examples/shop/gen -dir DIR [-users 200] [-days 30] [-end 2026-11-22]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/quiverfs/quiver/internal/scaffold"
)

func main() {
	dir := flag.String("dir", ".", "the feature repo to write data/ into")
	users := flag.Int("users", 200, "users")
	days := flag.Int("days", 30, "days of activity, ending at -end")
	endS := flag.String("end", time.Now().UTC().Format(time.DateOnly), "exclusive end of the activity (UTC date)")
	flag.Parse()
	end, err := time.Parse(time.DateOnly, *endS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen: -end:", err)
		os.Exit(2)
	}
	files, err := scaffold.WriteShopData(*dir, *users, *days, end)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}
