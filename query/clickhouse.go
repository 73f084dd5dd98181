package query

import (
	"encoding/json"
	"time"
)

// ClickHouse is the dialect of the scale-out store (store/clickhouse),
// written for the oldest server it supports, 18.16: no ILIKE, no
// JSONExtract, no DateTime64, no Bool. Its tables keep times as Int64
// nanoseconds, the document's fields as parallel arrays doc_keys and
// doc_values (each key the JSON array of its path), and the 16-byte
// form of addresses as lowercase hex; its parameters are inlined as
// literals by the store, since 18.16 takes none over HTTP.
var ClickHouse = &Dialect{
	name: "clickhouse",
	// FINAL collapses the copies of an event that a retried insert left
	// before the table's merges do.
	events:       "events FINAL",
	carry:        []string{"doc_keys", "doc_values"},
	seqPrewhere:  true,
	unionSources: true,
	timeValue:    func(t time.Time) frag { return sqlf(param{t.UnixNano()}) },
	uint64Text:   func(s string) frag { return sqlf("toUInt64(", param{s}, ")") },
	docText: func(path []string) frag {
		key := jsonKey(path)
		return sqlf("if(indexOf(doc_keys, ", param{key}, ") = 0, NULL, doc_values[indexOf(doc_keys, ", param{key}, ")])")
	},
	iLike: func(x frag, pattern string) frag {
		return sqlf("like(lowerUTF8(", x, "), lowerUTF8(", param{pattern}, "))")
	},
	// positionCaseInsensitive folds ASCII only: a needle with other
	// letters is left to the pattern alone.
	words: func(x frag, s, pattern string) frag {
		if ascii(s) {
			return sqlf("(positionCaseInsensitive(", x, ", ", param{s}, ") > 0 AND match(", x, ", ", param{"(?i)" + pattern}, "))")
		}
		return sqlf("match(", x, ", ", param{"(?i)" + pattern}, ")")
	},
	listHas: func(x frag, s string) frag { return sqlf("has(", x, ", ", param{s}, ")") },
	listAnyILike: func(x frag, pattern string) frag {
		return sqlf("arrayExists(_e -> like(lowerUTF8(_e), lowerUTF8(", param{pattern}, ")), ", x, ")")
	},
	toDouble: func(x frag) frag { return sqlf("toFloat64OrNull(toString(", x, "))") },
	toText:   func(x frag) frag { return sqlf("toString(", x, ")") },
	bucket: func(x frag, span time.Duration) frag {
		ns := span.Nanoseconds()
		return sqlf("(intDiv(", x, ", ", param{ns}, ") * ", param{ns}, ")")
	},
	// uniqExact of a Nullable column is NULL for a group without a
	// value, where DuckDB's count(DISTINCT) is 0.
	countDistinct: func(x frag) frag { return sqlf("ifNull(uniqExact(", x, "), 0)") },
	// Counts are UInt64 here and BIGINT in DuckDB.
	count: func(x frag) frag { return sqlf("toInt64(", x, ")") },
	values: func(x frag, list bool) frag {
		if list {
			return sqlf("arraySort(groupUniqArrayArray(", x, "))")
		}
		return sqlf("arraySort(groupUniqArray(", x, "))")
	},
	isTrue:   func(x frag) frag { return sqlf("ifNull(", x, ", 0)") },
	trueLit:  "1",
	falseLit: "0",
}

// ClickHouseCopies is the ClickHouse dialect reading events without
// FINAL, so that the copies a retried insert left are read as they lie:
// for a store that removes them itself. 18.16 reads FINAL as one merge
// of every part of the table, with buffers per part and column, which
// took over 10 GB for an events search of 2M events in 73 parts per
// shard (BENCHMARKS.md); statistics read few columns and keep FINAL.
var ClickHouseCopies = ClickHouse.readingFrom("events")

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// jsonKey is a path as store/clickhouse.Flatten names it in doc_keys:
// the JSON array of its keys.
func jsonKey(path []string) string {
	b, _ := json.Marshal(path)
	return string(b)
}
