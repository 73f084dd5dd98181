package corpus

import (
	"testing"
)

func TestScratch(t *testing.T) {
	m, err := Build(t.TempDir(), Options{Fixtures: "../../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs", Events: 20000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", m)
}
