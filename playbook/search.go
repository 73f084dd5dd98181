package playbook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
)

// MaxSearchRuns is how many runs one search-triggered playbook starts in a
// SearchTick; the matches past it are counted and logged, not run.
const MaxSearchRuns = 100

// searchPosition is the setting that keeps where a search-triggered
// playbook has read the ledgers to: a mark per ledger, comma-separated.
func searchPosition(name string) string { return "playbooks.search." + name }

// SearchTick starts the runs of the playbooks a search triggers: one per
// event the search matches among those stored since the last tick. A
// playbook's first tick starts it at the store's end: it acts on new
// events, not on history. Where each has read to is kept in the
// database, across restarts.
func (r *Runner) SearchTick(ctx context.Context) error {
	if r.opts.Stored == nil || r.opts.Events == nil {
		return nil
	}
	marks, err := r.opts.Stored()
	if err != nil {
		return fmt.Errorf("playbook: where the store is: %w", err)
	}
	var errs []error
	for _, p := range r.Playbooks() {
		if p.Trigger.search == nil {
			continue
		}
		set, err := r.opts.DB.Setting(ctx, searchPosition(p.Name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		from, ok := parseMarks(set.Value, len(marks))
		if !ok {
			from = marks // a new playbook, or ledgers that changed: from now on
		}
		// Where it has read to, ledger by ledger: a search that fails in
		// one ledger is not run again in those it finished.
		read := slices.Clone(from)
		started, dropped := 0, 0
		for i, mark := range marks {
			if from[i] >= mark {
				continue
			}
			err = r.opts.Events(ctx, p.Trigger.search, from[i], mark-1, func(ev *event.Event) error {
				if !p.conditionsHold(nil, ev) {
					return nil
				}
				if started >= MaxSearchRuns {
					dropped++
					return nil
				}
				started++
				run, err := r.newRun(ctx, p, nil, ev, "search")
				if err != nil {
					return err
				}
				r.claim(run.ID)
				r.carryOn(run, p, "")
				return nil
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("playbook %s: search: %w", p.Name, err))
				break
			}
			read[i] = mark
		}
		if dropped > 0 {
			r.metrics.dropped.Add(float64(dropped))
			r.log.Warn("a search-triggered playbook matched more events than it may run on at once; the rest are not run",
				"playbook", p.Name, "started", started, "not_run", dropped)
		}
		if err := r.opts.DB.SetSetting(ctx, meta.Setting{Name: searchPosition(p.Name), Value: formatMarks(read), Actor: "vigil", Updated: r.opts.Now().UTC()}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseMarks reads a position of n ledgers; ok is false for none, or for
// one of another number of ledgers.
func parseMarks(s string, n int) (marks []uint64, ok bool) {
	if s == "" {
		return nil, false
	}
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, false
	}
	marks = make([]uint64, n)
	for i, p := range parts {
		m, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, false
		}
		marks[i] = m
	}
	return marks, true
}

func formatMarks(marks []uint64) string {
	parts := make([]string, len(marks))
	for i, m := range marks {
		parts[i] = strconv.FormatUint(m, 10)
	}
	return strings.Join(parts, ",")
}
