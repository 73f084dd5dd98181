package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
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
// for concurrent use while facts are added. (facts.go says how it keeps
// them.)
type Inventory struct {
	strs    strTable
	assets  []assetRec
	facts   []factRec
	byKey   map[assetKey]int32
	byID    map[uint32]int32   // lower-cased id → the newest asset with it
	byValue map[uint32]int32   // lower-cased value of an indexed attribute → its newest fact
	byAddr  map[[16]byte]int32 // address (IPv4 mapped) → the newest fact of it
	// addrGens count the changes to the facts of addresses, by a hash of
	// the address (addrGen), and each assetRec the changes to its own, so
	// that what enrichment worked out of them (heldBy) can tell that it
	// still holds: an instance launched elsewhere changes neither.
	addrGens []uint32
	addrSeed maphash.Seed
	// gcpOps are the GCP operations whose first log entry was seen and
	// whose last was not yet, by producer/operation id (assets_cloud.go).
	gcpOps map[string]*gcpOp
}

// NewInventory returns an empty Inventory.
func NewInventory() *Inventory {
	return &Inventory{byKey: map[assetKey]int32{}, byID: map[uint32]int32{}, byValue: map[uint32]int32{}, byAddr: map[[16]byte]int32{}}
}

// reserve makes room for assets and facts more, so that a snapshot of
// millions is not added into indexes grown and rehashed many times over.
func (inv *Inventory) reserve(assets, facts int) {
	inv.assets = slices.Grow(inv.assets, assets)
	inv.facts = slices.Grow(inv.facts, facts)
	inv.byKey = regrow(inv.byKey, assets)
	inv.byID = regrow(inv.byID, assets)
	inv.byValue = regrow(inv.byValue, facts)
	inv.byAddr = regrow(inv.byAddr, facts)
}

// regrow returns m, or, when it holds fewer than n entries, a copy of it
// with room for n more.
func regrow[K comparable, V any](m map[K]V, n int) map[K]V {
	if len(m) >= n {
		return m
	}
	out := make(map[K]V, len(m)+n)
	maps.Copy(out, m)
	return out
}

// indexed are the attributes looked up by their value.
var indexed = map[string]bool{"private_ip": true, "public_ip": true, "arn": true, "name": true}

// asset returns the index of an asset, adding it if it is new. An asset
// is filed by provider, kind and id; the account and region are those
// first known.
func (inv *Inventory) asset(a Asset) int32 {
	k := assetKey{inv.strs.id(a.Provider), inv.strs.id(a.Kind), inv.strs.id(a.ID)}
	if i, ok := inv.byKey[k]; ok {
		r := &inv.assets[i]
		if r.account == inv.strs.id("") {
			r.account = inv.strs.id(a.Account)
		}
		if r.region == inv.strs.id("") {
			r.region = inv.strs.id(a.Region)
		}
		return i
	}
	i := int32(len(inv.assets))
	lower := inv.strs.id(strings.ToLower(a.ID))
	next, ok := inv.byID[lower]
	if !ok {
		next = none
	}
	inv.assets = append(inv.assets, assetRec{
		kind: k[1], id: k[2], provider: k[0], account: inv.strs.id(a.Account), region: inv.strs.id(a.Region),
		first: none, last: none, nextSameID: next,
	})
	inv.byKey[k] = i
	inv.byID[lower] = i
	return i
}

// lookupAsset returns the index of an asset, if the inventory has it.
func (inv *Inventory) lookupAsset(a Asset) (int32, bool) {
	var k assetKey
	for j, s := range []string{a.Provider, a.Kind, a.ID} {
		id, ok := inv.strs.find(s)
		if !ok {
			return 0, false
		}
		k[j] = id
	}
	i, ok := inv.byKey[k]
	return i, ok
}

func (inv *Inventory) assetOf(i int32) Asset {
	r := &inv.assets[i]
	return Asset{Kind: inv.strs.str(r.kind), ID: inv.strs.str(r.id), Provider: inv.strs.str(r.provider),
		Account: inv.strs.str(r.account), Region: inv.strs.str(r.region)}
}

// fact returns fact i as a Fact.
func (inv *Inventory) fact(i int32) Fact {
	f := &inv.facts[i]
	out := Fact{Asset: inv.assetOf(f.asset), Attr: inv.strs.str(f.attr), Value: inv.strs.str(f.value),
		From: fromNanos(f.from), Source: inv.strs.str(f.source)}
	if !f.open() {
		out.To = fromNanos(f.to)
	}
	return out
}

// Add adds a fact that starts holding; one of the same asset, attribute
// and value that holds already goes on holding.
func (inv *Inventory) Add(f Fact) { inv.add(f) }

// add is Add, and returns the index of the fact added, if one was.
func (inv *Inventory) add(f Fact) (int32, bool) {
	a := inv.asset(f.Asset)
	attr, value, from := inv.strs.id(f.Attr), inv.strs.id(f.Value), nanos(f.From)
	for j := inv.assets[a].first; j != none; j = inv.facts[j].nextOfAsset {
		// Known already: held since before, or this very fact, ended
		// since (the same event observed again: a scale-out's node
		// reads back from the store what it saw on its way in).
		if g := &inv.facts[j]; g.attr == attr && g.value == value && (g.open() && from >= g.from || from == g.from) {
			return 0, false
		}
	}
	to := int64(openTo)
	if !f.To.IsZero() {
		to = nanos(f.To)
	}
	i := int32(len(inv.facts))
	inv.facts = append(inv.facts, factRec{from: from, to: to, asset: a, attr: attr, value: value,
		source: inv.strs.id(f.Source), nextOfAsset: none, nextByValue: none, nextByAddr: none})
	r := &inv.assets[a]
	if r.last == none {
		r.first = i
	} else {
		inv.facts[r.last].nextOfAsset = i
	}
	r.last = i
	if indexed[f.Attr] {
		v := inv.strs.id(strings.ToLower(f.Value))
		inv.byValue[v] = inv.insert(headOf(inv.byValue, v), i, byValue)
	}
	if f.Attr == "private_ip" || f.Attr == "public_ip" {
		if ip, err := netip.ParseAddr(f.Value); err == nil {
			k := ip.Unmap().WithZone("").As16()
			inv.byAddr[k] = inv.insert(headOf(inv.byAddr, k), i, byAddr)
		}
	}
	inv.changed(i)
	return i, true
}

// addrGenSlots is how many counters addrGens has: addresses that share
// one only count each other's changes too.
const addrGenSlots = 1 << 14

// changed counts a change to fact j: added, or ended.
func (inv *Inventory) changed(j int32) {
	f := &inv.facts[j]
	inv.assets[f.asset].changes++
	if attr := inv.strs.str(f.attr); attr == "private_ip" || attr == "public_ip" {
		if ip, err := netip.ParseAddr(inv.strs.str(f.value)); err == nil {
			inv.addrGens[inv.addrSlot(ip)]++
		}
	}
}

// addrGen returns the count of the changes to the facts of ip (and of
// the addresses that share its counter).
func (inv *Inventory) addrGen(ip netip.Addr) uint32 { return inv.addrGens[inv.addrSlot(ip)] }

func (inv *Inventory) addrSlot(ip netip.Addr) int {
	if inv.addrGens == nil {
		inv.addrSeed, inv.addrGens = maphash.MakeSeed(), make([]uint32, addrGenSlots)
	}
	return int(maphash.Comparable(inv.addrSeed, ip.Unmap().WithZone("").As16()) & (addrGenSlots - 1))
}

// headOf returns the head of the list an index keeps at k.
func headOf[K comparable](index map[K]int32, k K) int32 {
	if h, ok := index[k]; ok {
		return h
	}
	return none
}

// The links of the lists the indexes keep.
func byValue(f *factRec) *int32 { return &f.nextByValue }
func byAddr(f *factRec) *int32  { return &f.nextByAddr }

// insert links fact i into a list of an index, newest first: after the
// facts that began at its time or later, so that of two that began
// together the one added first comes first. It returns the list's new
// head.
func (inv *Inventory) insert(head, i int32, next func(*factRec) *int32) int32 {
	from := inv.facts[i].from
	if head == none || inv.facts[head].from < from {
		*next(&inv.facts[i]) = head
		return i
	}
	p := head
	for n := *next(&inv.facts[p]); n != none && inv.facts[n].from >= from; n = *next(&inv.facts[p]) {
		p = n
	}
	*next(&inv.facts[i]) = *next(&inv.facts[p])
	*next(&inv.facts[p]) = i
	return head
}

// End ends, at t, every fact of the asset that holds then, or only those
// of attr when it is given: an instance terminated, an address released.
// A fact that starts after t is left alone: a source whose clock runs
// behind must not end what began after it.
func (inv *Inventory) End(a Asset, attr string, t time.Time) {
	ai, ok := inv.lookupAsset(a)
	if !ok {
		return
	}
	at := nanos(t)
	for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
		f := &inv.facts[j]
		if (attr == "" || inv.strs.str(f.attr) == attr) && f.open() && f.from <= at {
			f.to = at
			inv.changed(j)
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
	id, ok := inv.strs.find(strings.ToLower(v))
	if !ok {
		return nil
	}
	head, ok := inv.byValue[id]
	if !ok {
		return nil
	}
	at := nanos(t)
	var out []Fact
	for j := head; j != none; j = inv.facts[j].nextByValue {
		if t.IsZero() || inv.facts[j].holds(at) {
			out = append(out, inv.fact(j))
		}
	}
	return out
}

// Facts returns an asset's facts that held at t (every fact, for a zero
// t), in the order they began.
func (inv *Inventory) Facts(a Asset, t time.Time) []Fact {
	ai, ok := inv.lookupAsset(a)
	if !ok {
		return nil
	}
	return inv.factsOf(ai, t)
}

// tagAt returns the value of the asset's tag key at at (over all time
// when all is set): of the facts that give one, the latest.
func (inv *Inventory) tagAt(ai int32, key string, at int64, all bool) (string, bool) {
	var (
		v     string
		from  int64
		found bool
	)
	for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
		f := &inv.facts[j]
		if !all && !f.holds(at) || found && f.from < from {
			continue
		}
		if attr := inv.strs.str(f.attr); len(attr) == len("tag:")+len(key) && strings.HasPrefix(attr, "tag:") && attr[len("tag:"):] == key {
			v, from, found = inv.strs.str(f.value), f.from, true
		}
	}
	return v, found
}

func (inv *Inventory) factsOf(ai int32, t time.Time) []Fact {
	at := nanos(t)
	var out []Fact
	for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
		if t.IsZero() || inv.facts[j].holds(at) {
			out = append(out, inv.fact(j))
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
	if id, ok := inv.strs.find(strings.ToLower(ref)); ok {
		if head, ok := inv.byID[id]; ok {
			for ai := head; ai != none; ai = inv.assets[ai].nextSameID {
				if fs := inv.factsOf(ai, t); len(fs) > 0 {
					out[inv.assetOf(ai)] = fs
				}
			}
		}
	}
	return out
}

// Addrs returns the addresses (private and public) an asset held at t.
func (inv *Inventory) Addrs(a Asset, t time.Time) []netip.Addr {
	var out []netip.Addr
	for _, f := range inv.Facts(a, t) {
		if f.Attr == "private_ip" || f.Attr == "public_ip" {
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
	if ai, ok := inv.assetAt(ip, nanos(t)); ok {
		return inv.assetOf(ai), true
	}
	return Asset{}, false
}

func (inv *Inventory) assetAt(ip netip.Addr, at int64) (int32, bool) {
	head, ok := inv.byAddr[ip.Unmap().WithZone("").As16()]
	if !ok {
		return 0, false
	}
	for j := head; j != none; j = inv.facts[j].nextByAddr {
		if inv.facts[j].holds(at) {
			return inv.facts[j].asset, true
		}
	}
	return 0, false
}

// addrSpan returns the interval around at over which none of the facts
// of an address begins or ends: which asset had it at at, had it (or
// not) over all of it.
func (inv *Inventory) addrSpan(ip netip.Addr, at int64) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	head, ok := inv.byAddr[ip.Unmap().WithZone("").As16()]
	if !ok {
		return lo, hi
	}
	for j := head; j != none; j = inv.facts[j].nextByAddr {
		lo, hi = around(at, lo, hi, inv.facts[j].from, inv.facts[j].to)
	}
	return lo, hi
}

// around narrows [lo, hi) around at by the bounds of a fact.
func around(at, lo, hi, from, to int64) (int64, int64) {
	for _, b := range [2]int64{from, to} {
		switch {
		case b <= at && b > lo:
			lo = b
		case b > at && b < hi:
			hi = b
		}
	}
	return lo, hi
}

// span returns the interval around at over which none of an asset's
// facts begins or ends: what holds of it at at holds over all of it.
func (inv *Inventory) span(ai int32, at int64) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
		lo, hi = around(at, lo, hi, inv.facts[j].from, inv.facts[j].to)
	}
	return lo, hi
}

// Observe adds what an event says of assets: instances launched and
// terminated, users and roles created and deleted, addresses associated.
func (inv *Inventory) Observe(ev *event.Event) {
	// GCP's and Azure's logs are read in assets_cloud.go, GCP's failures
	// too: a failed last entry undoes the operation its first began.
	switch ev.Source {
	case "gcp.audit":
		inv.observeGCP(ev)
		return
	case "azure.activity":
		inv.observeAzure(ev)
		return
	}
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
// assets. GCP's failures are read too: a failed last entry of an
// operation undoes its first (assets_cloud.go). Azure's operation names
// come in either case, which only a wildcard value ignores.
const AssetQuery = "(source:aws.cloudtrail (action:RunInstances OR action:TerminateInstances OR action:CreateUser OR action:DeleteUser OR action:CreateRole OR action:DeleteRole OR action:AssociateAddress OR action:DisassociateAddress) outcome:success)" +
	" OR (source:gcp.audit (action:*compute.instances.insert OR action:*compute.instances.delete OR action:google.iam.admin.v1.CreateServiceAccount OR action:google.iam.admin.v1.DeleteServiceAccount))" +
	" OR (source:azure.activity (action:microsoft.compute/virtualmachines/write* OR action:microsoft.compute/virtualmachines/delete* OR action:microsoft.network/networkinterfaces/write* OR action:microsoft.network/networkinterfaces/delete* OR action:microsoft.network/publicipaddresses/write* OR action:microsoft.network/publicipaddresses/delete*) outcome:success)"

// Build builds the inventory the events of st before to tell of (all of
// them, for a zero to).
func Build(ctx context.Context, st Store, to time.Time) (*Inventory, error) {
	evs, err := assetEvents(ctx, st, to)
	if err != nil {
		return nil, err
	}
	inv := NewInventory()
	for _, ev := range evs {
		inv.Observe(ev)
	}
	return inv, nil
}

// assetEvents reads the events of st before to that make and end assets
// (all of them, for a zero to), in the order things happened, which the
// store's need not be.
func assetEvents(ctx context.Context, st Store, to time.Time) ([]*event.Event, error) {
	var evs []*event.Event
	err := st.Find(ctx, AssetQuery, time.Time{}, to, 0, func(ev *event.Event) error {
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: reading the events that make assets: %w", err)
	}
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	return evs, nil
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
