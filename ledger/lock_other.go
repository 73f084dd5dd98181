//go:build !unix

package ledger

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens the lock file; without flock the caller must make sure
// only one process opens the ledger.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return f, nil
}
