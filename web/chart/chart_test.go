package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares a chart with testdata/name.svg, after checking it is
// safe; -update writes it there instead. The files open in a browser.
func golden(t *testing.T, name string, got template.HTML) {
	t.Helper()
	if err := checkSVG(got); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, got)
	}
	path := filepath.Join("testdata", name+".svg")
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if g := []byte(got + "\n"); !bytes.Equal(g, want) {
		i := 0
		for i < len(g) && i < len(want) && g[i] == want[i] {
			i++
		}
		t.Errorf("%s differs from %s at byte %d:\ngot:  …%s\nwant: …%s\n(run go test -update if the change is meant)",
			name, path, i, excerpt(g, i), excerpt(want, i))
	}
}

func excerpt(b []byte, i int) string {
	lo, hi := max(i-60, 0), min(i+60, len(b))
	return string(b[lo:hi])
}

// checkSVG reports why out is not a single well-formed svg element safe
// to embed in a page: one that an XML parser accepts whole, with no
// script, no foreignObject, no event handler attribute, no style
// attribute (which the console's CSP refuses), no javascript: link, and
// no coordinate that is not a number.
func checkSVG[S ~string](out S) error {
	d := xml.NewDecoder(strings.NewReader(string(out)))
	d.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(tok.Name.Local)
			if depth == 0 {
				roots++
				if name != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg" {
					return errors.New("root is not an svg element: " + tok.Name.Local)
				}
			}
			if name == "script" || name == "foreignobject" || name == "iframe" {
				return errors.New("a " + name + " element")
			}
			for _, a := range tok.Attr {
				an := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(an, "on") || an == "style" {
					return errors.New("an attribute " + a.Name.Local)
				}
				switch an {
				case "x", "y", "width", "height", "cx", "cy", "r", "d", "points", "data-x0", "data-x1":
					if strings.Contains(a.Value, "NaN") || strings.Contains(a.Value, "Inf") || a.Value == "" {
						return errors.New("a geometry attribute " + a.Name.Local + `="` + a.Value + `"`)
					}
				}
				if an == "href" {
					v := strings.ToLower(strings.Map(func(r rune) rune {
						if r <= ' ' {
							return -1
						}
						return r
					}, a.Value))
					if strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "data:") || strings.HasPrefix(v, "vbscript:") {
						return errors.New("a link to " + a.Value)
					}
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(tok)) > 0 {
				return errors.New("text outside the svg element")
			}
		case xml.ProcInst, xml.Directive:
			return errors.New("a processing instruction or directive")
		}
	}
	if roots != 1 {
		return errors.New("not one root element")
	}
	return nil
}

// hostile are strings that try to get out of a title, an attribute or
// the svg element.
var hostile = []string{
	`</svg><script>alert(1)</script>`,
	`"><script>alert(1)</script>`,
	`' onmouseover='alert(1)`,
	`" onload="alert(1)`,
	`a & b < c > d "e" 'f'`,
	"]]><![CDATA[",
	"<!-- -->",
	"\x00\x01\x1b\ufffe\xff bad bytes",
	"line\nbreak\ttab\r",
	"&amp;&lt;&#x3C;script&#x3E;",
}

func TestHostileStrings(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for _, h := range hostile {
		zone := time.FixedZone(h, 3600)
		charts := map[string]template.HTML{
			"histogram": Histogram([]Bucket{{t0, t0.Add(time.Minute), 3}, {t0.Add(time.Minute), t0.Add(2 * time.Minute), 5}},
				HistogramOptions{Label: h, Location: zone, Link: func(from, to time.Time) string { return "/search?q=" + h }}),
			"histogram links": Histogram([]Bucket{{t0, t0.Add(time.Minute), 3}},
				HistogramOptions{Link: func(from, to time.Time) string { return h }}),
			"empty histogram": Histogram(nil, HistogramOptions{Label: h}),
			"line": Line([]Series{{Name: h, Points: []Point{{t0, 1}, {t0.Add(time.Hour), 2}}}, {Name: h}},
				LineOptions{Label: h, Unit: h, Location: zone,
					Band:  []Band{{t0, 0, 3}, {t0.Add(time.Hour), 1, 4}},
					Marks: []Mark{{t0.Add(time.Hour), 2, h}}}),
			"empty line": Line(nil, LineOptions{Label: h}),
		}
		for name, out := range charts {
			if err := checkSVG(out); err != nil {
				t.Errorf("%s with %q: %v\n%s", name, h, err, out)
			}
			if strings.Contains(strings.ToLower(string(out)), "<script") {
				t.Errorf("%s with %q: a script element\n%s", name, h, out)
			}
		}
	}
}

func TestSafeURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/search?q=x&from=1", "/search?q=x&from=1"},
		{"?from=1&to=2", "?from=1&to=2"},
		{"search", "search"},
		{"https://vigil.example/search", "https://vigil.example/search"},
		{"HTTP://vigil.example/", "HTTP://vigil.example/"},
		{"/a:b", "/a:b"},
		{"?q=a:b", "?q=a:b"},
		{"#x:y", "#x:y"},
		{"javascript:alert(1)", "#"},
		{"JavaScript:alert(1)", "#"},
		{" javascript:alert(1)", "#"},
		{"java\tscript:alert(1)", "#"},
		{"data:text/html,<script>", "#"},
		{"vbscript:x", "#"},
		{"mailto:a@b", "#"},
	} {
		if got := safeURL(tc.in); got != tc.want {
			t.Errorf("safeURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {12, "12"}, {12.04, "12"}, {12.05, "12.1"}, {-0.04, "0"}, {-3.25, "-3.2"},
		{math.NaN(), "0"}, {math.Inf(1), "0"},
	} {
		if got := num(tc.in); got != tc.want {
			t.Errorf("num(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDims(t *testing.T) {
	for _, tc := range []struct{ w, h, ww, wh int }{
		{0, 0, 1000, 120},
		{-5, -5, 1000, 120},
		{600, 80, 600, 80},
		{1, 1, 120, 40},
		{1 << 40, 1 << 40, 20000, 4000},
	} {
		if w, h := dims(tc.w, tc.h, 1000, 120); w != tc.ww || h != tc.wh {
			t.Errorf("dims(%d, %d) = %d×%d, want %d×%d", tc.w, tc.h, w, h, tc.ww, tc.wh)
		}
	}
}

func TestScript(t *testing.T) {
	js := string(Script)
	if n := strings.Count(js, "\n"); n >= 150 {
		t.Errorf("chart.js has %d lines; keep it under 150", n)
	}
	// What a strict CSP refuses, or a brief forbids.
	for _, bad := range []string{"eval(", "new Function", "setTimeout(\"", "innerHTML", ".style", "import ", "require("} {
		if strings.Contains(js, bad) {
			t.Errorf("chart.js contains %q", bad)
		}
	}
}
