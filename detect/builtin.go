package detect

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// builtinFS holds the built-in rule pack: rules written here for what the
// public Sigma corpus lacks (the cross-environment case, logging disabled
// anywhere, credentials used away from where they were issued, …).
//
//go:embed builtin
var builtinFS embed.FS

// Builtin returns the rules of the built-in pack. Their files are named
// builtin/<name>.yml.
func Builtin() ([]*Rule, error) {
	var (
		rules []*Rule
		errs  []error
	)
	err := fs.WalkDir(builtinFS, "builtin", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsRuleFile(p) {
			return err
		}
		data, err := builtinFS.ReadFile(p)
		if err != nil {
			return err
		}
		rs, err := Parse(path.Join("builtin", path.Base(p)), data)
		rules = append(rules, rs...)
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return rules, errors.Join(errs...)
}

// BuiltinFile returns the text of a built-in rule file by the name its
// rules carry in File (builtin/<name>.yml).
func BuiltinFile(name string) ([]byte, error) {
	if path.Dir(name) != "builtin" {
		return nil, fmt.Errorf("%s: not a built-in rule file", name)
	}
	return builtinFS.ReadFile(name)
}
