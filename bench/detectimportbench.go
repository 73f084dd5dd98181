package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	detectImportName   = "vigil import (detection on)"
	noDetectImportName = "vigil import --detect=false"
)

// runDetectImport answers what detection adds to ingest: `vigil import`
// of the corpus into a fresh data directory with detection on (the rules
// of the detect benchmark: SigmaHQ's and the built-in pack, the
// detections recorded in the metadata database, as the command does by
// default), against the same import with
// --detect=false, taking turns going first.
func runDetectImport(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files := filepath.Join(c.corpusDir(), "AWSLogs")
	if err := warm(files); err != nil {
		return err
	}
	bin, err := c.buildVigil(ctx)
	if err != nil {
		return err
	}
	// The rules of go run ./bench detect, SigmaHQ's beside the built-in
	// pack, through the config as a user would load them; with -rules ""
	// the built-in pack alone, vigil import's default.
	conf := filepath.Join(c.dir, "detect-import.yml")
	text := "detect: {}\n"
	if c.rules != "" {
		rules, err := filepath.Abs(c.rules)
		if err != nil {
			return err
		}
		text = fmt.Sprintf("detect:\n  rules: [%q]\n", rules)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	runs, err := c.alternate(m.Events,
		func(int) (measure, error) {
			return c.cliImport(ctx, bin, detectImportName, files, "--config", conf, "--detect=true")
		},
		func(int) (measure, error) {
			return c.cliImport(ctx, bin, noDetectImportName, files, "--config", conf, "--detect=false")
		})
	if err != nil {
		return err
	}
	with, without := runs[0], runs[1]
	report(c.out, fmt.Sprintf("import of %d CloudTrail events (%d gzip files, %.0f MB) with detection and without", m.Events, m.Files, mb(m.Bytes)), with, without)
	added, addedCPU := addedCost(with, without)
	fmt.Fprintf(c.out, "\ndetection adds to the import's time: median %.1f%% (runs: %s); to its CPU time: median %.1f%% (runs: %s). Target: under 10%%\n",
		100*median(added, cmpFloat), fmtPercents1(added), 100*median(addedCPU, cmpFloat), fmtPercents1(addedCPU))
	return nil
}

// addedCost returns, run by run, what side a adds to side b: to its
// time and to its CPU time, as fractions.
func addedCost(a, b []measure) (elapsed, cpu []float64) {
	for i := range min(len(a), len(b)) {
		elapsed = append(elapsed, a[i].elapsed.Seconds()/b[i].elapsed.Seconds()-1)
		cpu = append(cpu, a[i].cpu.Seconds()/b[i].cpu.Seconds()-1)
	}
	return elapsed, cpu
}

// cliImport times `vigil import` of files into a fresh data directory:
// wall time, and the CPU time of the process.
func (c *config) cliImport(ctx context.Context, bin, name, files string, flags ...string) (measure, error) {
	r := measure{name: name}
	data := filepath.Join(c.dir, "detect-import")
	os.RemoveAll(data)
	defer os.RemoveAll(data)
	args := append([]string{"import", "--data", data, "--format", "aws.cloudtrail", "-q"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, files)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r.elapsed = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("vigil import: %w: %s", err, out.String())
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	summary := lastLine(out.String(), "imported ")
	if _, err := fmt.Sscanf(summary, "imported %d events", &r.events); err != nil {
		return r, fmt.Errorf("vigil import said %q", out.String())
	}
	// The import's own time, after its start (opening the data
	// directory, loading lookups): "… in 31.6s".
	if i := strings.LastIndex(summary, " in "); i >= 0 {
		r.ingest, _ = time.ParseDuration(strings.TrimSpace(summary[i+4:]))
	}
	c.logf("%s: %s; %s", name, r, lastLine(out.String(), ""))
	return r, nil
}
