package playbook

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// LoadDir reads the playbook files (*.yml, *.yaml) under the paths. A file
// that does not load, or names a playbook another did, is left out and
// its error returned; the others load.
func LoadDir(paths ...string) ([]*Playbook, []error) {
	var l loader
	for _, root := range paths {
		l.load(os.DirFS(root), func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) })
	}
	return l.out, l.errs
}

// LoadFS reads the playbook files of a file system, as LoadDir does.
func LoadFS(fsys fs.FS) ([]*Playbook, []error) {
	var l loader
	l.load(fsys, func(p string) string { return p })
	return l.out, l.errs
}

type loader struct {
	out  []*Playbook
	errs []error
	seen map[string]string // file by playbook name
}

// load reads the playbooks of fsys, naming files by name(path).
func (l *loader) load(fsys fs.FS, name func(string) string) {
	if l.seen == nil {
		l.seen = map[string]string{}
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !IsPlaybookFile(p) {
			return nil
		}
		file := name(p)
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			l.errs = append(l.errs, err)
			return nil
		}
		pb, err := Parse(file, data)
		if err != nil {
			l.errs = append(l.errs, err)
			return nil
		}
		if other, ok := l.seen[pb.Name]; ok {
			l.errs = append(l.errs, &Error{File: file, Line: pb.Line, Err: fmt.Errorf("playbook %q is the name of %s too", pb.Name, other)})
			return nil
		}
		l.seen[pb.Name] = file
		l.out = append(l.out, pb)
		return nil
	})
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("reading playbooks: %w", err))
	}
}

// IsPlaybookFile reports whether a file's name is a playbook's.
func IsPlaybookFile(name string) bool {
	ext := path.Ext(name)
	return ext == ".yml" || ext == ".yaml"
}

//go:embed examples/*.yml
var examples embed.FS

// Examples returns the example playbooks docs/playbooks.md describes:
// notify the analyst on call, lock a compromised IAM user, isolate a
// crypto-mining instance.
func Examples() fs.FS {
	sub, err := fs.Sub(examples, "examples")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Rehearse makes every step of the playbook a dry run: it records what
// it would do and does nothing, as the demo's playbooks do.
func (p *Playbook) Rehearse() {
	p.Mode = DryRun
	for i := range p.Steps {
		p.Steps[i].Mode = DryRun
	}
}
