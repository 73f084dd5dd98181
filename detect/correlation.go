package detect

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A Correlation is a Sigma correlation rule's correlation section: it
// matches when the events other rules matched, grouped by field values,
// meet a condition within a timespan.
type Correlation struct {
	Type     string   // event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile
	Rules    []string // ids or names of the rules correlated
	GroupBy  []string
	Timespan time.Duration
	// Field is the field value_count counts distinct values of, and
	// value_sum, value_avg and value_percentile aggregate.
	Field string
	Cond  []Comparison // all must hold
	// Aliases maps an alias used in GroupBy to, per rule name or id, the
	// field that holds its value in that rule's events.
	Aliases map[string]map[string]string
	// Generate says whether the correlated rules also alert on their own.
	Generate bool
}

// A Comparison is one criterion of a correlation's condition.
type Comparison struct {
	Op    string // gt, gte, lt, lte, eq, neq
	Value float64
}

func (c Comparison) holds(x float64) bool {
	switch c.Op {
	case "gt":
		return x > c.Value
	case "gte":
		return x >= c.Value
	case "lt":
		return x < c.Value
	case "lte":
		return x <= c.Value
	case "eq":
		return x == c.Value
	case "neq":
		return x != c.Value
	}
	return false
}

// Holds reports whether x meets every criterion.
func (c *Correlation) Holds(x float64) bool {
	for _, cmp := range c.Cond {
		if !cmp.holds(x) {
			return false
		}
	}
	return true
}

var correlationTypes = map[string]bool{
	"event_count": true, "value_count": true, "temporal": true, "temporal_ordered": true,
	"value_sum": true, "value_avg": true, "value_percentile": true,
}

// maxTimespan bounds how long correlation state is kept.
const maxTimespan = 31 * 24 * time.Hour

func parseCorrelation(n *yaml.Node) (*Correlation, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "correlation: want a mapping, found %s", kindName(n))
	}
	c := &Correlation{}
	var condNode, spanNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "type":
			c.Type, err = scalar(v)
			if err == nil && !correlationTypes[c.Type] {
				err = fmt.Errorf("unknown correlation type %q (event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile)", c.Type)
			}
		case "rules":
			c.Rules, err = scalars(v)
		case "group-by":
			c.GroupBy, err = scalars(v)
		case "timespan", "timeframe":
			spanNode = v
			var s string
			if s, err = scalar(v); err == nil {
				c.Timespan, err = parseDuration(s)
			}
			if err == nil && c.Timespan > maxTimespan {
				err = fmt.Errorf("longer than %v, the longest correlation state kept", maxTimespan)
			}
		case "condition":
			condNode = v
			err = c.parseCondition(v)
		case "aliases":
			c.Aliases, err = parseAliases(v)
		case "generate":
			c.Generate, err = parseBool(v)
		default:
			err = fmt.Errorf("unknown attribute")
		}
		if err != nil {
			return nil, errAt(v, "correlation %s: %v", k.Value, err)
		}
	}
	switch {
	case c.Type == "":
		return nil, errAt(n, "correlation has no type")
	case len(c.Rules) == 0:
		return nil, errAt(n, "correlation has no rules")
	case spanNode == nil:
		return nil, errAt(n, "correlation has no timespan")
	}
	temporal := c.Type == "temporal" || c.Type == "temporal_ordered"
	if condNode == nil {
		if !temporal {
			return nil, errAt(n, "correlation has no condition")
		}
		// Temporal correlations default to every rule having matched.
		c.Cond = []Comparison{{Op: "gte", Value: float64(len(c.Rules))}}
	}
	needsField := c.Type != "event_count" && !temporal
	if needsField && c.Field == "" {
		return nil, errAt(condNode, "a %s correlation's condition names the field it aggregates (field: …)", c.Type)
	}
	if !needsField && c.Field != "" {
		return nil, errAt(condNode, "a %s correlation's condition has no field", c.Type)
	}
	for alias, m := range c.Aliases {
		for rule := range m {
			if !contains(c.Rules, rule) {
				return nil, errAt(n, "alias %s names rule %q, which the correlation does not list", alias, rule)
			}
		}
	}
	return c, nil
}

func (c *Correlation) parseCondition(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping such as {gte: 10}, found %s", kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "field":
			s, err := scalar(v)
			if err != nil {
				return err
			}
			c.Field = s
		case "gt", "gte", "lt", "lte", "eq", "neq":
			s, err := scalar(v)
			if err != nil {
				return err
			}
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number", k.Value, s)
			}
			c.Cond = append(c.Cond, Comparison{Op: k.Value, Value: x})
		default:
			return fmt.Errorf("unknown criterion %q (gt, gte, lt, lte, eq, neq, field)", k.Value)
		}
	}
	if len(c.Cond) == 0 {
		return fmt.Errorf("no criterion (gt, gte, lt, lte, eq, neq)")
	}
	return nil
}

func parseAliases(n *yaml.Node) (map[string]map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a mapping, found %s", kindName(n))
	}
	out := map[string]map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: want a mapping of rule to field, found %s", k.Value, kindName(v))
		}
		m := map[string]string{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			f, err := scalar(v.Content[j+1])
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %v", k.Value, v.Content[j].Value, err)
			}
			m[v.Content[j].Value] = f
		}
		out[k.Value] = m
	}
	return out, nil
}

func parseBool(n *yaml.Node) (bool, error) {
	switch strings.ToLower(n.Value) {
	case "true", "yes":
		return true, nil
	case "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, found %s", kindName(n))
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
