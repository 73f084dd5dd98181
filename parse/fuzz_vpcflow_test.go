package parse

import (
	"path/filepath"
	"testing"
)

func FuzzVPCFlow(f *testing.F) {
	files, _ := filepath.Glob(vpcflowDocs + "*.log")
	addFixtureSeeds(f, files...)
	for _, s := range []string{
		"${version} ${srcaddr} ${dstaddr} ${start}\n5 10.0.0.1 ::1 1418530010\n",
		`{"srcAddr":"10.0.0.1","dstAddr":"10.0.0.2","dstPort":22,"start":1418530010.0,"action":"REJECT"}`,
		`[{"account_id":123456789010,"interface_id":"eni-1","srcaddr":"null","dstaddr":"10.0.0.1","log_status":"NODATA"}]`,
		`{"Records":[{"srcaddr":"1.2.3.4","dstaddr":"5.6.7.8","start":"2020-01-01T00:00:00Z"}]}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, small bool) {
		// Text records keep their exact bytes; JSON records are trimmed
		// by the shared JSON reader.
		text := !startsWithJSONBytes(data)
		fuzzParse(t, data, "aws.vpcflow", small, text)
	})
}

func startsWithJSONBytes(b []byte) bool {
	b = trimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
