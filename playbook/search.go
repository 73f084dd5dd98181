package playbook

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
)

// MaxSearchRuns is how many runs one search-triggered playbook starts in a
// SearchTick; the matches past it are counted and logged, not run.
const MaxSearchRuns = 100

// searchPosition is the setting that keeps where a search-triggered
// playbook has read the ledger to.
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
	mark := r.opts.Stored()
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
		from, err := strconv.ParseUint(set.Value, 10, 64)
		if err != nil || set.Value == "" {
			from = mark // a new playbook: from now on
		}
		if from < mark {
			started, dropped := 0, 0
			err = r.opts.Events(ctx, p.Trigger.search, from, mark-1, func(ev *event.Event) error {
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
				continue
			}
			if dropped > 0 {
				r.metrics.dropped.Add(float64(dropped))
				r.log.Warn("a search-triggered playbook matched more events than it may run on at once; the rest are not run",
					"playbook", p.Name, "started", started, "not_run", dropped)
			}
		}
		if err := r.opts.DB.SetSetting(ctx, meta.Setting{Name: searchPosition(p.Name), Value: strconv.FormatUint(mark, 10), Actor: "vigil", Updated: r.opts.Now().UTC()}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
