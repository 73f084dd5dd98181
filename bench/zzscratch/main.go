package main

import (
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/vigilsec/vigil/bench/corpus"
)

func main() {
	gen := flag.Int("gen", 0, "")
	dir := flag.String("dir", "/tmp/vigil-bench/c", "")
	flag.Parse()
	if *gen > 0 {
		t := time.Now()
		m, err := corpus.Build(*dir, corpus.Options{Fixtures: "../shared/testdata/stratus-red-team-detonation-logs/detonation-logs", Events: *gen, Seed: 1})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(time.Since(t), m.Files, m.Bytes, m.JSONBytes, m.Needles)
		return
	}
	os.Remove("/tmp/vigil-bench/x.duckdb")
	db, err := sql.Open("duckdb", "/tmp/vigil-bench/x.duckdb")
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range flag.Args() {
		t := time.Now()
		rows, err := db.Query(q)
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			v := make([]any, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			rows.Scan(p...)
			if n < 5 {
				s := fmt.Sprint(v)
				if len(s) > 300 {
					s = s[:300]
				}
				fmt.Println(s)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			fmt.Println("ERR", err)
		}
		fmt.Printf("%v  (%d rows) %s\n", time.Since(t), n, q[:min(len(q), 200)])
	}
}
