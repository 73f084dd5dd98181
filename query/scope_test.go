package query

import (
	"slices"
	"testing"
)

func TestScopeNarrow(t *testing.T) {
	tests := []struct {
		s      Scope
		tenant string
		want   []string
		all    bool
	}{
		{Scope{All: true}, "a", []string{"a"}, false},
		{Scope{Tenants: []string{"a", "b"}}, "b", []string{"b"}, false},
		{Scope{Tenants: []string{"a"}}, "b", nil, false},
		{Scope{}, "a", nil, false},
	}
	for _, tt := range tests {
		got := tt.s.Narrow(tt.tenant)
		if got.All != tt.all || !slices.Equal(got.Tenants, tt.want) {
			t.Errorf("%+v.Narrow(%q) = %+v, want tenants %v", tt.s, tt.tenant, got, tt.want)
		}
	}
}
