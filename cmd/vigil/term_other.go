//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import (
	"errors"
	"os"
)

// noEcho cannot turn off a terminal's echo here: secrets are piped in.
func noEcho(*os.File) (func(), error) {
	return nil, errors.New("this system's terminal echo cannot be turned off by vigil")
}
