package parse

import (
	"bytes"
	"math/rand"
	"os"
	"testing"
	"time"
)

func TestZZProbeSlow(t *testing.T) {
	if os.Getenv("PROBE") == "" {
		t.Skip()
	}
	b, _ := os.ReadFile(shared + "plaso-log-format-fixtures/test_data/jsonl/gcp_logging.jsonl")
	seeds := bytes.Split(b, []byte("\n"))
	r := rand.New(rand.NewSource(1))
	var worst time.Duration
	for i := 0; i < 20000; i++ {
		in := append([]byte(nil), seeds[r.Intn(len(seeds))]...)
		for k := 0; k < 1+r.Intn(8) && len(in) > 0; k++ {
			switch r.Intn(3) {
			case 0:
				in[r.Intn(len(in))] = byte(r.Intn(256))
			case 1:
				p := r.Intn(len(in))
				in = append(in[:p], in[p+1:]...)
			case 2:
				p := r.Intn(len(in))
				in = append(in[:p], append([]byte{"{}[]\":,\n "[r.Intn(9)]}, in[p:]...)...)
			}
		}
		start := time.Now()
		for _, format := range []string{"gcp.audit", Auto} {
			Parse(bytes.NewReader(in), format, Options{Received: testReceived, MaxLine: 1 << 16}, func(r Result) error { return nil })
		}
		if d := time.Since(start); d > worst {
			worst = d
			t.Logf("%v %d bytes", d, len(in))
			if d > time.Second {
				os.WriteFile("/tmp/slow.bin", in, 0o644)
				return
			}
		}
	}
}
