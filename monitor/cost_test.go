package monitor

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestReadCost: each export gives the daily usage cost by provider,
// account, service and currency; credits and taxes are left out; a row
// that cannot be read is skipped with its line and why.
func TestReadCost(t *testing.T) {
	for _, tc := range []struct {
		file  string
		want  []string // labels day=cost, sorted
		skips []CostSkip
	}{
		{"cur.csv", []string{
			`{account="111122223333", currency="USD", provider="aws", service="AmazonEC2"} 2026-01-05=0.192 2026-01-06=24.48`,
			`{account="111122223333", currency="USD", provider="aws", service="AmazonS3"} 2026-01-05=0.0115`,
			`{account="444455556666", currency="USD", provider="aws", service="AmazonEC2"} 2026-01-06=0.0104`,
		}, []CostSkip{{9, "no account"}, {10, `start "yesterday" is not a time`}, {11, `cost "lots" is not a number`}}},
		{"cur2.csv", []string{`{account="111122223333", currency="USD", provider="aws", service="AmazonEC2"} 2026-01-05=2`}, nil},
		{"focus.csv", []string{
			`{account="00000000-0000-0000-0000-000000000001", currency="USD", provider="azure", service="Virtual Machines"} 2026-01-05=12.5`,
			`{account="acme-prod", currency="USD", provider="gcp", service="Compute Engine"} 2026-01-05=7.25`,
		}, nil},
		{"gcp.csv", []string{`{account="acme-prod", currency="USD", provider="gcp", service="Compute Engine"} 2026-01-05=0.96`}, nil},
		{"azure.csv", []string{
			`{account="00000000-0000-0000-0000-000000000001", currency="EUR", provider="azure", service="Storage"} 2026-01-05=0.4`,
			`{account="00000000-0000-0000-0000-000000000001", currency="EUR", provider="azure", service="Virtual Machines"} 2026-01-05=4.8`,
		}, nil},
	} {
		f, err := os.Open("testdata/cost/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		series, st, err := ReadCost(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		var got []string
		for _, s := range series {
			if s.Metric != CostMetric {
				t.Errorf("%s: metric %q", tc.file, s.Metric)
			}
			text := s.Labels.String()
			for _, x := range s.Samples {
				text += fmt.Sprintf(" %s=%v", x.Time.Format("2006-01-02"), math.Round(x.Value*1e6)/1e6)
			}
			got = append(got, text)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.file, strings.Join(got, "\n     "), strings.Join(tc.want, "\n     "))
		}
		if !slices.Equal(st.Skips, tc.skips) || st.Skipped != len(tc.skips) {
			t.Errorf("%s: skips %+v, want %+v", tc.file, st.Skips, tc.skips)
		}
	}
}

func TestReadCostErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"":                           "empty file",
		"a,b,c\n1,2,3\n":             "no account, start, cost column",
		"SubscriptionId,Date\nx,y\n": "no cost column",
	} {
		if _, _, err := ReadCost(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

// FuzzReadCost: any text gives series or an error, never a panic, and
// every sample a number.
func FuzzReadCost(f *testing.F) {
	for _, name := range []string{"cur.csv", "gcp.csv", "azure.csv"} {
		b, err := os.ReadFile("testdata/cost/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, doc string) {
		series, _, err := ReadCost(strings.NewReader(doc))
		if err != nil && series != nil {
			t.Error("series with an error")
		}
		for _, s := range series {
			for _, x := range s.Samples {
				if math.IsNaN(x.Value) {
					t.Errorf("a NaN sample in %+v", s)
				}
			}
		}
	})
}
