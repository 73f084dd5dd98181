package inventory

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/event"
)

// Identities follows the credentials being issued as events arrive, and
// names each event's origin: the identity that started the chain of the
// credential it was made with. Its methods are safe for concurrent use.
type Identities struct {
	mu     sync.Mutex
	g      *Graph
	newest time.Time // the latest issue seen
	added  int       // since the last prune

	// awaiting holds the temporary credentials whose issue is not known
	// yet, by key and by lower-cased session ARN, with the span of event
	// time of the events that used them (or whose chain ended at them);
	// late, the spans of those whose issue has since arrived, which
	// BackfillLate gives their origin (backfill.go).
	awaiting map[string]*useSpan
	late     []lateSpan
}

// NewIdentities returns an empty Identities.
func NewIdentities() *Identities {
	return &Identities{g: NewGraph(), awaiting: map[string]*useSpan{}}
}

// Observe adds the credentials events issued.
func (ids *Identities) Observe(evs []*event.Event) {
	// Read before the lock is taken: reading an issue decodes its
	// event's document, and ingest enriches batches in parallel.
	var issues []Issue
	for _, ev := range evs {
		issues = append(issues, Hops(ev)...)
	}
	if len(issues) == 0 {
		return
	}
	ids.mu.Lock()
	defer ids.mu.Unlock()
	for _, is := range issues {
		ids.add(is)
	}
}

// add adds an issue. The caller holds ids.mu.
func (ids *Identities) add(is Issue) {
	ids.g.Add(is)
	ids.arrived(is)
	if is.Time.After(ids.newest) {
		ids.newest = is.Time
	}
	if ids.added++; ids.added >= 10_000 {
		// Credentials expire: those long past cannot be in use, and
		// holding them would grow without end.
		ids.g.Prune(ids.newest.Add(-2 * MaxSessionDuration))
		ids.pruneAwaiting(ids.newest.Add(-awaitingHorizon))
		ids.added = 0
	}
}

// Enrich observes the credentials events issue, then sets the origin
// (Session.Origin) of each event made with a temporary credential whose
// chain is known. The events are in time order, as a batch reaches the
// ledger, so that a batch's uses find the issues before them.
func (ids *Identities) Enrich(evs []*event.Event) {
	ids.Observe(evs)
	ids.mu.Lock()
	defer ids.mu.Unlock()
	for _, ev := range evs {
		if ev.Session.Origin != "" || !temporary(ev) && len(ids.g.byKey[ev.Session.ID]) == 0 {
			continue
		}
		p := Principal{Key: ev.Session.ID, ARN: ev.Actor.ID}
		if ids.g.Len() == 0 {
			ids.await(p, ev.Time)
			continue
		}
		chain := ids.g.Chain(p, ev.Time)
		if len(chain) > 1 {
			ev.Session.Origin = Origin(chain).ID()
		}
		ids.await(Origin(chain), ev.Time)
	}
}

// temporary reports whether an event was made with a temporary
// credential: an AWS session key, or as a role's or federated session.
func temporary(ev *event.Event) bool {
	switch {
	case strings.HasPrefix(ev.Session.ID, "ASIA"):
		return true
	case ev.Actor.Type == "AssumedRole", ev.Actor.Type == "FederatedUser":
		return true
	}
	return false
}

// ID names a principal as events' session_origin holds it: its ARN, or
// instance/ID, azure-resource/RESOURCE-ID, service/NAME, PROVIDER/SUBJECT;
// a GCP principal by its email or principalSubject.
func (p Principal) ID() string {
	switch {
	case p.Type == "EC2Instance":
		return "instance/" + p.Name
	case p.Type == azureResourceType:
		// ARM compares resource ids regardless of case, and its logs write
		// the same id in either (resourcegroups, resourceGroups): one
		// resource must have one origin.
		return "azure-resource/" + strings.ToLower(strings.TrimPrefix(p.Name, "/"))
	case p.Provider != "":
		return p.Provider + "/" + p.Subject
	case p.ARN != "":
		return p.ARN
	case p.Type == "AWSService":
		return "service/" + p.Service
	case p.Key != "":
		return p.Key
	}
	return p.Name
}

// Prune drops the issues whose credentials expired before t.
func (g *Graph) Prune(t time.Time) {
	expired := func(is *Issue) bool {
		end := is.Expires
		if end.IsZero() {
			end = is.Time.Add(MaxSessionDuration)
		}
		return end.Before(t)
	}
	for k, l := range g.byKey {
		if l = slices.DeleteFunc(l, expired); len(l) == 0 {
			delete(g.byKey, k)
		} else {
			g.byKey[k] = l
		}
	}
	n := 0
	for k, l := range g.bySession {
		if l = slices.DeleteFunc(l, expired); len(l) == 0 {
			delete(g.bySession, k)
		} else {
			g.bySession[k] = l
			n += len(l)
		}
	}
	// Issues without a session are counted by key.
	for _, l := range g.byKey {
		for _, is := range l {
			if is.Session == "" || is.Kind == SessionToken || is.Kind == AccessKey {
				n++
			}
		}
	}
	g.n = n
}
