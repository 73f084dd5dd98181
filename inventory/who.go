package inventory

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// A Store is where Who reads events: those a search (in vigil's search
// language) matches in a time range, oldest first. It applies the
// caller's tenants.
type Store interface {
	Find(ctx context.Context, query string, from, to time.Time, limit int, fn func(*event.Event) error) error
}

// A Report says who is behind a credential: the chain back to its
// origin, and what was done under it, oldest first.
type Report struct {
	Ref    Principal `json:"ref"`
	Chain  []Link    `json:"chain"`
	Origin Principal `json:"origin"`
	Uses   []Use     `json:"events"`
	// More says the uses were cut at MaxUses.
	More bool `json:"more,omitempty"`
}

// A Use is an event done with a credential of the chain.
type Use struct {
	Seq     uint64     `json:"seq"`
	Time    time.Time  `json:"time"`
	Account string     `json:"account"`
	Region  string     `json:"region,omitempty"`
	Action  string     `json:"action"`
	Actor   string     `json:"actor"`
	Key     string     `json:"key,omitempty"`
	SrcIP   netip.Addr `json:"src_ip,omitzero"`
	Outcome string     `json:"outcome"`
	// OffInstance says why the use looks made off the instance whose
	// credential it was, if it does.
	OffInstance string `json:"off_instance,omitempty"`
}

// An AddrBook says which addresses an asset of a tenant had at a time.
// The Enricher is one, from the inventory it keeps of the logs and the
// snapshots.
type AddrBook interface {
	Addrs(tenant string, a Asset, t time.Time) []netip.Addr
}

// MaxUses bounds the events a Report lists.
const MaxUses = 2000

// Who reassembles the identity behind ref (an access key id or an ARN)
// from the events of st between from and to: the credentials STS issued
// in that time (and up to a day and a half before, the longest a
// temporary credential lives), the chain from ref back to its origin,
// and every event done under the chain's temporary credentials. An
// instance's addresses, which tell the calls made with its credential
// from elsewhere, come from book, or when it is nil from an inventory
// of the audit logs of st.
func Who(ctx context.Context, st Store, book AddrBook, ref string, from, to time.Time) (*Report, error) {
	p := ParseRef(ref)
	if p.Key == "" && p.ARN == "" {
		return nil, fmt.Errorf("inventory: name a credential by its access key id or an ARN")
	}
	g := NewGraph()
	issuedFrom := from
	if !from.IsZero() {
		issuedFrom = from.Add(-MaxSessionDuration)
	}
	err := st.Find(ctx, IssuingQuery, issuedFrom, to, 0, func(ev *event.Event) error {
		for _, is := range Hops(ev) {
			g.Add(is)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: reading the credentials issued: %w", err)
	}
	// A key alone: its first use says which session it acts as, for a
	// key whose issue is not in the logs by that key.
	var at time.Time
	if p.ARN == "" {
		err := st.Find(ctx, "session:"+query.Quote(p.Key), from, to, 1, func(ev *event.Event) error {
			p.ARN, at = ev.Actor.ID, ev.Time
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("inventory: reading the uses of %s: %w", p.Key, err)
		}
	}
	r := &Report{Ref: ParseRef(ref)}
	r.Chain = g.Chain(p, at)
	r.Origin = Origin(r.Chain)

	// The uses: of each temporary credential of the chain, by key and by
	// session.
	var terms []string
	for _, l := range r.Chain {
		if l.Issue == nil {
			continue
		}
		if l.As.Key != "" {
			terms = append(terms, "session:"+query.Quote(l.As.Key))
		}
		if l.Issue.Key != "" && l.Issue.Key != l.As.Key {
			terms = append(terms, "session:"+query.Quote(l.Issue.Key))
		}
		switch {
		case l.As.ARN == "" || l.Issue.Kind == SessionToken:
		case strings.Contains(l.As.ARN, "@"):
			// A GCP account, which events name by its email.
			terms = append(terms, "actor:"+query.Quote(l.As.ARN))
		default:
			terms = append(terms, "actor_id:"+query.Quote(l.As.ARN))
		}
	}
	if len(terms) == 0 && p.Key != "" {
		terms = append(terms, "session:"+query.Quote(p.Key)) // a long-term key: its own uses
	}
	if len(terms) == 0 {
		return r, nil
	}
	var (
		uses     []*event.Event
		instance bool
	)
	err = st.Find(ctx, strings.Join(slices.Compact(terms), " OR "), from, to, MaxUses+1, func(ev *event.Event) error {
		uses = append(uses, ev)
		_, ok := InstanceOf(ev)
		instance = instance || ok
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: reading the chain's events: %w", err)
	}
	// An instance's credential: its addresses, as the inventory knows
	// them, tell its own calls from others'.
	if instance && book == nil {
		inv, err := Build(ctx, st, to)
		if err != nil {
			return nil, err
		}
		book = builtBook{inv}
	}
	for _, ev := range uses {
		var addrs []netip.Addr
		if id, ok := InstanceOf(ev); ok {
			addrs = book.Addrs(ev.Tenant, Asset{Kind: "instance", ID: id, Provider: "aws", Account: ev.Cloud.Account, Region: ev.Cloud.Region}, ev.Time)
		}
		r.Uses = append(r.Uses, Use{Seq: ev.Seq, Time: ev.Time, Account: ev.Cloud.Account, Region: ev.Cloud.Region, Action: ev.Action,
			Actor: ev.Actor.Name, Key: ev.Session.ID, SrcIP: ev.SrcIP, Outcome: ev.Outcome.Result, OffInstance: OffInstance(ev, addrs)})
	}
	if len(r.Uses) > MaxUses {
		r.Uses, r.More = r.Uses[:MaxUses], true
	}
	slices.SortStableFunc(r.Uses, func(a, b Use) int { return a.Time.Compare(b.Time) })
	return r, nil
}

// builtBook is the AddrBook of an inventory Build made of the events of
// the tenants a search sees, whose assets are each filed under its
// provider's id.
type builtBook struct{ inv *Inventory }

func (b builtBook) Addrs(_ string, a Asset, t time.Time) []netip.Addr { return b.inv.Addrs(a, t) }
