package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// An Asset is a thing in a cloud account: an instance, a user, a role, a
// network interface.
type Asset struct {
	Kind     string `json:"kind"` // instance, user, role, network-interface, …
	ID       string `json:"id"`   // i-…, the user's ARN, eni-…
	Provider string `json:"provider"`
	Account  string `json:"account"`
	Region   string `json:"region,omitempty"`
}

// key is how an inventory files an asset.
func (a Asset) key() string { return a.Provider + "/" + a.Kind + "/" + a.ID }

// A Fact is one attribute of an asset over a time interval [From, To): an
// address it had, its type, a tag. To is zero while it holds. An asset
// exists over the interval of its "exists" fact.
type Fact struct {
	Asset Asset     `json:"asset"`
	Attr  string    `json:"attr"` // exists, private_ip, public_ip, image, type, subnet, tag:KEY, arn
	Value string    `json:"value"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to,omitzero"`
	// Source names the event or snapshot that said so.
	Source string `json:"source,omitempty"`
}

// Holds reports whether the fact held at t: From ≤ t < To.
func (f *Fact) Holds(t time.Time) bool {
	return !t.Before(f.From) && (f.To.IsZero() || t.Before(f.To))
}

// An Inventory holds assets' facts over time, and answers what held at a
// time: which asset had an address, what an asset was. It is not safe
// for concurrent use while facts are added.
type Inventory struct {
	facts   []*Fact
	byAsset map[string][]*Fact
	// byValue indexes the facts of attributes looked up by value (the
	// addresses, ARNs), by value, ordered by From.
	byValue map[string][]*Fact
	// byID are the assets' keys by their lower-cased ids.
	byID map[string][]string
	// byAddr indexes the address facts by address, ordered by From:
	// enrichment asks for every event's addresses, and a map keyed by
	// the address answers without making its text.
	byAddr map[netip.Addr][]*Fact
}

// NewInventory returns an empty Inventory.
func NewInventory() *Inventory {
	return &Inventory{byAsset: map[string][]*Fact{}, byValue: map[string][]*Fact{}, byID: map[string][]string{}, byAddr: map[netip.Addr][]*Fact{}}
}

// indexed are the attributes looked up by their value.
var indexed = map[string]bool{"private_ip": true, "public_ip": true, "arn": true, "name": true}

// Add adds a fact that starts holding; one of the same asset, attribute
// and value that holds already goes on holding.
func (inv *Inventory) Add(f Fact) {
	for _, g := range inv.byAsset[f.Asset.key()] {
		if g.Attr == f.Attr && g.Value == f.Value && g.To.IsZero() && !f.From.Before(g.From) {
			return
		}
	}
	p := &f
	inv.facts = append(inv.facts, p)
	k := f.Asset.key()
	if len(inv.byAsset[k]) == 0 {
		id := strings.ToLower(f.Asset.ID)
		inv.byID[id] = append(inv.byID[id], k)
	}
	inv.byAsset[k] = append(inv.byAsset[k], p)
	if indexed[f.Attr] {
		v := strings.ToLower(f.Value)
		inv.byValue[v] = insertFact(inv.byValue[v], p)
	}
	if f.Attr == "private_ip" || f.Attr == "public_ip" {
		if ip, err := netip.ParseAddr(f.Value); err == nil {
			inv.byAddr[ip.Unmap()] = insertFact(inv.byAddr[ip.Unmap()], p)
		}
	}
}

// insertFact inserts f into l, ordered by From.
func insertFact(l []*Fact, f *Fact) []*Fact {
	i, _ := slices.BinarySearchFunc(l, f.From, func(x *Fact, t time.Time) int { return x.From.Compare(t) })
	return slices.Insert(l, i, f)
}

// End ends, at t, every fact of the asset that holds then, or only those
// of attr when it is given: an instance terminated, an address released.
// A fact that starts after t is left alone: a source whose clock runs
// behind must not end what began after it.
func (inv *Inventory) End(a Asset, attr string, t time.Time) {
	for _, f := range inv.byAsset[a.key()] {
		if (attr == "" || f.Attr == attr) && f.To.IsZero() && !f.From.After(t) {
			f.To = t
		}
	}
}

// Len is how many facts the inventory holds.
func (inv *Inventory) Len() int { return len(inv.facts) }

// Who returns the facts whose value is v (an address, an ARN, a name),
// that held at t, newest first; all of them, over time, for a zero t.
// An address reused by several assets over time has one answer at any
// time: the asset that held it last began to, if two overlap (a
// terminated instance logged late).
func (inv *Inventory) Who(v string, t time.Time) []Fact {
	l := inv.byValue[strings.ToLower(v)]
	var out []Fact
	for i := len(l) - 1; i >= 0; i-- {
		if t.IsZero() || l[i].Holds(t) {
			out = append(out, *l[i])
		}
	}
	return out
}

// Facts returns an asset's facts that held at t (every fact, for a zero
// t), in the order they began.
func (inv *Inventory) Facts(a Asset, t time.Time) []Fact {
	var out []Fact
	for _, f := range inv.byAsset[a.key()] {
		if t.IsZero() || f.Holds(t) {
			out = append(out, *f)
		}
	}
	slices.SortStableFunc(out, func(x, y Fact) int { return x.From.Compare(y.From) })
	return out
}

// Find returns the assets a reference names (an address, an instance or
// interface id, an ARN, a user or role name), with their facts at t.
func (inv *Inventory) Find(ref string, t time.Time) map[Asset][]Fact {
	out := map[Asset][]Fact{}
	ref = strings.TrimSpace(ref)
	for _, f := range inv.Who(ref, t) {
		out[f.Asset] = inv.Facts(f.Asset, t)
	}
	for _, k := range inv.byID[strings.ToLower(ref)] {
		a := inv.byAsset[k][0].Asset
		if fs := inv.Facts(a, t); len(fs) > 0 {
			out[a] = fs
		}
	}
	return out
}

// Addrs returns the addresses (private and public) an asset held at t.
func (inv *Inventory) Addrs(a Asset, t time.Time) []netip.Addr {
	var out []netip.Addr
	for _, f := range inv.byAsset[a.key()] {
		if (f.Attr == "private_ip" || f.Attr == "public_ip") && f.Holds(t) {
			if ip, err := netip.ParseAddr(f.Value); err == nil {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// AssetAt returns the asset that held an address at t, if one did: as
// Who says, the one that began to last if two did.
func (inv *Inventory) AssetAt(ip netip.Addr, t time.Time) (Asset, bool) {
	l := inv.byAddr[ip.Unmap().WithZone("")]
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].Holds(t) {
			return l[i].Asset, true
		}
	}
	return Asset{}, false
}

// Observe adds what an event says of assets: instances launched and
// terminated, users and roles created and deleted, addresses associated.
func (inv *Inventory) Observe(ev *event.Event) {
	if ev.Source != "aws.cloudtrail" || ev.Outcome.Result == event.OutcomeFailure {
		return
	}
	switch ev.Action {
	case "RunInstances", "TerminateInstances", "CreateUser", "DeleteUser", "CreateRole", "DeleteRole",
		"AssociateAddress", "DisassociateAddress":
	default:
		return
	}
	var r ec2Record
	if json.Unmarshal(ev.Document(), &r) != nil || r.ErrorCode != "" {
		return
	}
	src := "cloudtrail:" + ev.Action
	if ev.ID != "" {
		src += ":" + ev.ID
	}
	asset := func(kind, id string) Asset {
		return Asset{Kind: kind, ID: id, Provider: "aws", Account: ev.Cloud.Account, Region: ev.Cloud.Region}
	}
	add := func(a Asset, attr, v string) {
		if v != "" {
			inv.Add(Fact{Asset: a, Attr: attr, Value: v, From: ev.Time, Source: src})
		}
	}
	switch ev.Action {
	case "RunInstances":
		for _, it := range r.ResponseElements.InstancesSet.Items {
			a := asset("instance", it.InstanceID)
			add(a, "exists", "true")
			add(a, "private_ip", it.PrivateIPAddress)
			add(a, "public_ip", it.IPAddress)
			add(a, "image", it.ImageID)
			add(a, "type", it.InstanceType)
			add(a, "subnet", it.SubnetID)
			for _, t := range it.TagSet.Items {
				add(a, "tag:"+t.Key, t.Value)
			}
			for _, ni := range it.NetworkInterfaceSet.Items {
				add(a, "private_ip", ni.PrivateIPAddress)
				if ni.Association.PublicIP != "" {
					add(a, "public_ip", ni.Association.PublicIP)
				}
				for _, ip := range ni.PrivateIPAddressesSet.Items {
					add(a, "private_ip", ip.PrivateIPAddress)
				}
			}
		}
	case "TerminateInstances":
		for _, it := range r.RequestParameters.InstancesSet.Items {
			inv.End(asset("instance", it.InstanceID), "", ev.Time)
		}
	case "CreateUser", "CreateRole":
		kind, u := "user", r.ResponseElements.User
		if ev.Action == "CreateRole" {
			kind, u = "role", r.ResponseElements.Role
		}
		if u.ARN == "" {
			return
		}
		a := asset(kind, u.ARN)
		add(a, "exists", "true")
		add(a, "arn", u.ARN)
		add(a, "name", cmpOr(u.UserName, u.RoleName))
	case "DeleteUser", "DeleteRole":
		name, kind := r.RequestParameters.UserName, "user"
		if ev.Action == "DeleteRole" {
			name, kind = r.RequestParameters.RoleName, "role"
		}
		for _, f := range inv.Who(name, ev.Time) {
			if f.Attr == "name" && f.Asset.Kind == kind && f.Asset.Account == ev.Cloud.Account {
				inv.End(f.Asset, "", ev.Time)
			}
		}
	case "AssociateAddress":
		if id := r.RequestParameters.InstanceID; id != "" {
			add(asset("instance", id), "public_ip", r.RequestParameters.PublicIP)
		}
	case "DisassociateAddress":
		if ip := r.RequestParameters.PublicIP; ip != "" {
			for _, f := range inv.Who(ip, ev.Time) {
				inv.End(f.Asset, "public_ip", ev.Time)
			}
		}
	}
}

// ec2Record is what the events that make and end assets say of them.
type ec2Record struct {
	ErrorCode         string `json:"errorCode"`
	RequestParameters struct {
		InstancesSet struct {
			Items []struct {
				InstanceID string `json:"instanceId"`
			} `json:"items"`
		} `json:"instancesSet"`
		UserName   string `json:"userName"`
		RoleName   string `json:"roleName"`
		InstanceID string `json:"instanceId"`
		PublicIP   string `json:"publicIp"`
	} `json:"requestParameters"`
	ResponseElements struct {
		InstancesSet struct {
			Items []ec2Instance `json:"items"`
		} `json:"instancesSet"`
		User iamPrincipal `json:"user"`
		Role iamPrincipal `json:"role"`
	} `json:"responseElements"`
}

type iamPrincipal struct {
	ARN      string `json:"arn"`
	UserName string `json:"userName"`
	RoleName string `json:"roleName"`
}

type ec2Instance struct {
	InstanceID       string `json:"instanceId"`
	PrivateIPAddress string `json:"privateIpAddress"`
	IPAddress        string `json:"ipAddress"`
	ImageID          string `json:"imageId"`
	InstanceType     string `json:"instanceType"`
	SubnetID         string `json:"subnetId"`
	TagSet           struct {
		Items []struct{ Key, Value string } `json:"items"`
	} `json:"tagSet"`
	NetworkInterfaceSet struct {
		Items []struct {
			PrivateIPAddress string `json:"privateIpAddress"`
			Association      struct {
				PublicIP string `json:"publicIp"`
			} `json:"association"`
			PrivateIPAddressesSet struct {
				Items []struct {
					PrivateIPAddress string `json:"privateIpAddress"`
				} `json:"item"`
			} `json:"privateIpAddressesSet"`
		} `json:"items"`
	} `json:"networkInterfaceSet"`
}

// AssetQuery is the search that selects the events that make and end
// assets.
const AssetQuery = "source:aws.cloudtrail (action:RunInstances OR action:TerminateInstances OR action:CreateUser OR action:DeleteUser OR action:CreateRole OR action:DeleteRole OR action:AssociateAddress OR action:DisassociateAddress) outcome:success"

// Build builds the inventory the events of st before to tell of (all of
// them, for a zero to).
func Build(ctx context.Context, st Store, to time.Time) (*Inventory, error) {
	inv := NewInventory()
	var evs []*event.Event
	err := st.Find(ctx, AssetQuery, time.Time{}, to, 0, func(ev *event.Event) error {
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: reading the events that make assets: %w", err)
	}
	// In the order things happened, which the store's need not be.
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	for _, ev := range evs {
		inv.Observe(ev)
	}
	return inv, nil
}

// A Found is an asset a reference names, with its facts.
type Found struct {
	Asset Asset  `json:"asset"`
	Facts []Fact `json:"facts"`
}

// Lookup returns the assets ref names at t (over all time, for a zero
// t), each with its facts, ordered by asset.
func (inv *Inventory) Lookup(ref string, t time.Time) []Found {
	m := inv.Find(ref, t)
	out := make([]Found, 0, len(m))
	for a, fs := range m {
		out = append(out, Found{Asset: a, Facts: fs})
	}
	slices.SortFunc(out, func(x, y Found) int { return strings.Compare(x.Asset.key(), y.Asset.key()) })
	return out
}
