package playbook

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse: any file either loads or is refused with an *Error naming
// its line; nothing panics, and a playbook that loads plans without
// panicking on an empty alert.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/deactivate-backdoor-key.yml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(seed), backdoorKey, autoDeactivate, "", "name: x", "- a\n- b", "name: [", "name: x\ntrigger: {manual: true}\nsteps: [{action: notify, with: {channel: '{{'}}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yml", data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "f.yml" {
				t.Fatalf("error %v is not an *Error of the file", err)
			}
			return
		}
		d, err := NewData(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Plan(d)
	})
}
