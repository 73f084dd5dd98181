//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// noEcho turns off the echo of the terminal f, so that a secret typed
// is not shown, and returns what turns it back on. It uses the termios
// ioctls directly, as golang.org/x/term does, which the module does not
// require.
func noEcho(f *os.File) (restore func(), err error) {
	fd := f.Fd()
	var old syscall.Termios
	if err := termios(fd, ioctlGetTermios, &old); err != nil {
		return nil, fmt.Errorf("reading the terminal's settings: %w", err)
	}
	t := old
	t.Lflag &^= syscall.ECHO
	t.Lflag |= syscall.ICANON | syscall.ISIG
	t.Iflag |= syscall.ICRNL
	if err := termios(fd, ioctlSetTermios, &t); err != nil {
		return nil, fmt.Errorf("turning off the terminal's echo: %w", err)
	}
	return func() { termios(fd, ioctlSetTermios, &old) }, nil
}

func termios(fd, req uintptr, t *syscall.Termios) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(t))); errno != 0 {
		return errno
	}
	return nil
}
