package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/monitor"
)

// A configError is a bad setting, named by its path in the file
// ("retention.legal_holds[0].reason"), so that loadConfig can name its
// line.
type configError struct {
	path string
	err  error
}

func (e *configError) Error() string { return e.path + ": " + e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// lineOf returns the line of the setting at path in the YAML document
// root, or of the nearest enclosing setting that is there; 0 if none.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		key, index, hasIndex := part, 0, false
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			var err error
			if index, err = strconv.Atoi(part[i+1 : len(part)-1]); err == nil {
				key, hasIndex = part[:i], true
			}
		}
		next := mappingValue(n, key)
		if next == nil {
			return line
		}
		line = next.Line
		if hasIndex {
			if next.Kind != yaml.SequenceNode || index >= len(next.Content) {
				return line
			}
			next = next.Content[index]
			line = next.Line
		}
		n = next
	}
	return line
}

// mappingValue returns the value of key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			// The key's line, since a nested mapping starts below it.
			v := *n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				v.Line = n.Content[i].Line
			}
			return &v
		}
	}
	return nil
}

// check validates the settings that YAML's types do not, and derives the
// values the rest of the program uses.
func (c *config) check() error {
	if c.Tenant == "" {
		c.Tenant = "default"
	}
	c.Ledger.checkpointEvery = time.Minute
	if e := c.Ledger.CheckpointEvery; e != "" {
		d, err := time.ParseDuration(e)
		if err != nil || d <= 0 {
			return &configError{"ledger.checkpoint_every", fmt.Errorf("%q is not a positive duration", e)}
		}
		c.Ledger.checkpointEvery = d
	}
	if err := c.Retention.parse(); err != nil {
		return err
	}
	if err := c.Ingest.check(c.Tenant); err != nil {
		return err
	}
	if c.MaxSkew != "" {
		d, err := time.ParseDuration(c.MaxSkew)
		if err != nil {
			return &configError{"max_skew", err}
		}
		c.maxSkew = d
	}
	var err error
	if c.alerts, err = c.Alerts.config(); err != nil {
		return err
	}
	if _, _, err = c.Notify.build(); err != nil {
		return err
	}
	if err := c.Playbooks.check(); err != nil {
		return err
	}
	if err := c.Context.check(c.Tenant); err != nil {
		return err
	}
	if err := monitor.LoadProbes(c.Monitor.Probes); err != nil {
		return &configError{"monitor.probes", err}
	}
	if err := monitor.CheckRules(c.Monitor.Rules); err != nil {
		return &configError{"monitor.rules", err}
	}
	if err := monitor.CheckScrapeTargets(c.Monitor.Scrape); err != nil {
		return &configError{"monitor.scrape", err}
	}
	if c.Meta.URL != "" {
		u, err := secretValue(c.Meta.URL)
		if err == nil && !meta.IsPostgres(u) {
			err = fmt.Errorf("not a postgres:// URL")
		}
		if err != nil {
			return &configError{"meta.url", err}
		}
		c.metaURL = u
	}
	return c.Scale.check(c)
}
