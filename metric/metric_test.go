package metric

import "testing"

// TestSeriesID: a series' id names the tenant, the metric and each label
// apart, so that no two series of different names share one by how their
// parts run together.
func TestSeriesID(t *testing.T) {
	s := func(metric string, ls ...string) *Series {
		var labels Labels
		for i := 0; i < len(ls); i += 2 {
			labels = append(labels, Label{Name: ls[i], Value: ls[i+1]})
		}
		return &Series{Metric: metric, Labels: labels}
	}
	base := s("up", "job", "api")
	if base.ID("acme") != s("up", "job", "api").ID("acme") {
		t.Error("the same series has two ids")
	}
	for name, other := range map[string]uint64{
		"another tenant":             base.ID("globex"),
		"another metric":             s("down", "job", "api").ID("acme"),
		"a label's value":            s("up", "job", "web").ID("acme"),
		"name and value run on":      s("up", "jobapi", "").ID("acme"),
		"tenant and metric run on":   s("eup", "job", "api").ID("acm"),
		"a label split into two":     s("up", "job", "a", "pi", "").ID("acme"),
		"no labels":                  s("up").ID("acme"),
		"a value taken for the name": s("up", "api", "job").ID("acme"),
	} {
		if other == base.ID("acme") {
			t.Errorf("%s: the same id", name)
		}
	}
}
