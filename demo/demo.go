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

// Files returns the dataset as a file system of JSON files.
func Files() fs.FS {
	sub, err := fs.Sub(data, "data")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
