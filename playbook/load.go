package playbook

import (
	"fmt"
	"os"
	"path/filepath"
)

// LoadDir reads the playbook files (*.yml, *.yaml) under the paths. A file
// that does not load, or names a playbook another did, is left out and
// its error returned; the others load.
func LoadDir(paths ...string) ([]*Playbook, []error) {
	var (
		out  []*Playbook
		errs []error
	)
	seen := map[string]string{}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !IsPlaybookFile(path) {
				return nil
			}
			p, err := ParseFile(path)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if other, ok := seen[p.Name]; ok {
				errs = append(errs, &Error{File: path, Line: p.Line, Err: fmt.Errorf("playbook %q is the name of %s too", p.Name, other)})
				return nil
			}
			seen[p.Name] = path
			out = append(out, p)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reading playbooks: %w", err))
		}
	}
	return out, errs
}

// IsPlaybookFile reports whether a file's name is a playbook's.
func IsPlaybookFile(path string) bool {
	ext := filepath.Ext(path)
	return ext == ".yml" || ext == ".yaml"
}
