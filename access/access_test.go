package access

import (
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, r := range Roles() {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", "ingest "} {
		if _, err := ParseRole(s); err == nil || !strings.Contains(err.Error(), "analyst") {
			t.Errorf("ParseRole(%q): %v; want an error listing the roles", s, err)
		}
	}
}

func TestCheckTenant(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"default", true},
		{"acme", true},
		{"a", true},
		{"0", true},
		{"acme-prod.eu_1", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Acme", false},
		{"acme corp", false},
		{"-acme", false},
		{".acme", false},
		{"_acme", false},
		{"acme/prod", false},
		{"acme'--", false},
		{"acme\n", false},
		{"åcme", false},
	} {
		err := CheckTenant(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTenant(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
