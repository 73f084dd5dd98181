// Package demo bundles the demo dataset that 'vigil serve --demo' loads
// into a fresh data directory: real CloudTrail logs of 35 attack
// techniques detonated by Stratus Red Team (see SOURCES.md).
package demo

import (
	"embed"
	"io/fs"
)

//go:embed data/*.json
var data embed.FS

//go:embed context/*
var contextFiles embed.FS

// Files returns the dataset as a file system of JSON files.
func Files() fs.FS {
	sub, err := fs.Sub(data, "data")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Context returns what the demo is enriched with when the config names
// nothing: a threat-intel list (watchlist.txt) and a cloud's published
// ranges (ip-ranges.json).
func Context() fs.FS {
	sub, err := fs.Sub(contextFiles, "context")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
