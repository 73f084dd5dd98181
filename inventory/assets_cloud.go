package inventory

// This file derives assets from GCP's and Azure's audit logs, as Observe
// does from CloudTrail's.
//
// GCP: Compute Engine logs an instance's insert and delete as a
// long-running operation, in two entries that share operation.id: the
// first (operation.first) when the request is accepted, with the request
// itself (machine type, interfaces, labels); the last (operation.last)
// when the operation is done, with only its outcome (a status code if it
// failed). The instance exists from the entry that completes the insert
// and ends at the one that completes the delete; an entry that is both
// first and last, or has no operation, completes its operation itself.
// So the first entry of an operation is kept (a gcpOp) until its last
// comes, and a failed last drops it: nothing of the instance is made. An
// export out of order may hold the last before the first: the last's
// outcome is kept for the first in the same way. And an export may lack
// the last: an operation whose last has not come an hour after its first
// (gcpOperationWait; an instance is made or deleted in minutes) is taken
// as done when its first was logged, and so is one older than a later
// operation on the same instance, which could not have begun until it
// ended. The facts of an operation name it as their source.
//
// An instance is named by its resource name,
// projects/PROJECT/zones/ZONE/instances/NAME. Some entries give the
// project by number (the plaso fixture's do, where the entry's project
// label gives its id); the id is written in its place, so that an insert
// and a delete that name the project differently name one instance.
// Service accounts are named by their email: CreateServiceAccount's
// response holds it, DeleteServiceAccount's monitored resource
// (resource.labels.email_id) does, its resourceName often naming the
// account by unique id instead.
//
// Azure: the activity log records a write or delete (Administrative
// category) when it starts and again when it succeeds or fails, with
// Accepted between for those that run on; only the success makes or ends
// an asset, named by its resource id in lower case, since Azure writes
// ids in either case. A write of an asset that exists, an update, leaves
// it as it is.

import (
	"encoding/json"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// gcpOperationWait is how long after its first entry an operation whose
// last entry was not seen is taken to have completed.
const gcpOperationWait = time.Hour

// gcpVerbs are the methods that make and end assets, by what they do.
var gcpVerbs = map[string]string{
	"compute.instances.insert":                 "insert",
	"v1.compute.instances.insert":              "insert",
	"beta.compute.instances.insert":            "insert",
	"alpha.compute.instances.insert":           "insert",
	"compute.instances.delete":                 "delete",
	"v1.compute.instances.delete":              "delete",
	"beta.compute.instances.delete":            "delete",
	"alpha.compute.instances.delete":           "delete",
	"google.iam.admin.v1.CreateServiceAccount": "create-sa",
	"google.iam.admin.v1.DeleteServiceAccount": "delete-sa",
}

// gcpEntry is what a Cloud Logging entry says of the asset it makes or
// ends.
type gcpEntry struct {
	Operation struct {
		ID       string `json:"id"`
		Producer string `json:"producer"`
		First    bool   `json:"first"`
		Last     bool   `json:"last"`
	} `json:"operation"`
	Resource struct {
		Labels struct {
			EmailID string `json:"email_id"`
		} `json:"labels"`
	} `json:"resource"`
	ProtoPayload struct {
		ResourceName string             `json:"resourceName"`
		Request      gcpInstanceRequest `json:"request"`
		Response     struct {
			Email string `json:"email"` // CreateServiceAccount's
		} `json:"response"`
	} `json:"protoPayload"`
}

// gcpInstanceRequest holds the fields of an Instance resource that an
// insert request gives and the inventory keeps; name is also
// DeleteServiceAccount's.
type gcpInstanceRequest struct {
	Name        string `json:"name"`
	MachineType string `json:"machineType"` // zones/ZONE/machineTypes/TYPE, or a URL ending so
	Disks       []struct {
		Boot             bool `json:"boot"`
		InitializeParams struct {
			SourceImage string `json:"sourceImage"`
		} `json:"initializeParams"`
	} `json:"disks"`
	NetworkInterfaces []struct {
		NetworkIP     string `json:"networkIP"`
		Subnetwork    string `json:"subnetwork"`
		AccessConfigs []struct {
			NatIP string `json:"natIP"`
		} `json:"accessConfigs"`
	} `json:"networkInterfaces"`
	Labels map[string]string `json:"labels"`
}

// A cloudFact is an attribute an entry gives an asset.
type cloudFact struct{ attr, value string }

// facts returns what an insert request says of the instance: only what
// it gives, since the addresses Compute Engine picks itself are not
// logged.
func (r *gcpInstanceRequest) facts() []cloudFact {
	var out []cloudFact
	add := func(attr, v string) {
		if v != "" {
			out = append(out, cloudFact{attr, v})
		}
	}
	addr := func(attr, v string) {
		if ip, err := netip.ParseAddr(v); err == nil {
			add(attr, ip.Unmap().String())
		}
	}
	if _, t, ok := strings.Cut(r.MachineType, "machineTypes/"); ok && !strings.Contains(t, "/") {
		add("type", t)
	}
	for _, d := range r.Disks {
		if d.Boot {
			add("image", d.InitializeParams.SourceImage)
		}
	}
	for _, ni := range r.NetworkInterfaces {
		addr("private_ip", ni.NetworkIP)
		add("subnet", ni.Subnetwork)
		for _, ac := range ni.AccessConfigs {
			addr("public_ip", ac.NatIP)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		add("tag:"+k, r.Labels[k])
	}
	return out
}

// A gcpOp is an instance's insert or delete of which one entry was seen
// and the other not yet: the first, with its request, or (in an export
// out of order) the last, with its outcome, kept for the first to come.
type gcpOp struct {
	verb  string // insert or delete
	asset Asset
	facts []cloudFact // an insert's request's
	at    time.Time   // when the entry was logged
	src   string
	// ended marks the last entry's, and failed its failure.
	ended, failed bool
}

// pendOp keeps an operation's entry until its other one is seen.
func (inv *Inventory) pendOp(key string, o *gcpOp) {
	if inv.gcpOps == nil {
		inv.gcpOps = map[string]*gcpOp{}
	}
	inv.gcpOps[key] = o
}

// observeGCP adds what a GCP audit log entry says of assets.
func (inv *Inventory) observeGCP(ev *event.Event) {
	inv.completeGCP(func(o *gcpOp) bool { return o.at.Before(ev.Time.Add(-gcpOperationWait)) })
	verb := gcpVerbs[ev.Action]
	if verb == "" {
		return
	}
	var e gcpEntry
	if err := json.Unmarshal(ev.Document(), &e); err != nil && !isTypeError(err) {
		return
	}
	failed := ev.Outcome.Result == event.OutcomeFailure
	switch verb {
	case "insert", "delete":
		inv.gcpInstanceOp(ev, verb, &e, failed)
	case "create-sa":
		if email := cmpOr(e.ProtoPayload.Response.Email, e.Resource.Labels.EmailID); email != "" && !failed {
			a := Asset{Kind: "service-account", ID: email, Provider: "gcp", Account: ev.Cloud.Account}
			inv.Add(Fact{Asset: a, Attr: "exists", Value: "true", From: ev.Time, Source: gcpSource(ev, "")})
		}
	case "delete-sa":
		email := e.Resource.Labels.EmailID
		for _, name := range []string{e.ProtoPayload.ResourceName, e.ProtoPayload.Request.Name} {
			// projects/P/serviceAccounts/EMAIL, where not by unique id
			if email == "" && strings.Contains(path.Base(name), "@") {
				email = path.Base(name)
			}
		}
		if email != "" && !failed {
			inv.End(Asset{Kind: "service-account", ID: email, Provider: "gcp"}, "", ev.Time)
		}
	}
}

// gcpInstanceOp follows an entry of an instance's insert or delete.
func (inv *Inventory) gcpInstanceOp(ev *event.Event, verb string, e *gcpEntry, failed bool) {
	id, project, zone, name, ok := gcpInstance(e.ProtoPayload.ResourceName, ev.Cloud.Account)
	if !ok {
		return
	}
	op := e.Operation
	o := &gcpOp{verb: verb, at: ev.Time, src: gcpSource(ev, op.ID),
		asset: Asset{Kind: "instance", ID: id, Provider: "gcp", Account: project, Region: zone}}
	if verb == "insert" {
		o.facts = append([]cloudFact{{"exists", "true"}, {"name", name}}, e.ProtoPayload.Request.facts()...)
	}
	key := op.Producer + "/" + op.ID
	switch {
	case op.ID != "" && op.First && !op.Last:
		// The request: the operation is done at its last entry, unless
		// that came already.
		if failed {
			return
		}
		var last *gcpOp
		if p := inv.gcpOps[key]; p != nil && p.ended {
			last = p
			delete(inv.gcpOps, key)
		} else {
			inv.pendOp(key, o)
		}
		if last != nil && !last.failed {
			inv.applyGCP(o, last.at)
		}
	case op.ID != "" && !op.First && !op.Last:
		// Compute Engine logs no entries between; another producer's
		// progress says nothing of the outcome.
	default:
		// The last entry, or the only one.
		if op.ID != "" && !op.First {
			if p := inv.gcpOps[key]; p != nil && !p.ended {
				o.facts = append(p.facts, o.facts...)
				delete(inv.gcpOps, key)
			} else {
				// No first yet: keep the outcome for it.
				inv.pendOp(key, &gcpOp{verb: verb, asset: o.asset, at: ev.Time, src: o.src, ended: true, failed: failed})
			}
		}
		if failed {
			return
		}
		inv.completeGCP(func(p *gcpOp) bool { return p.asset.ID == id && !p.ended && !p.at.After(ev.Time) })
		inv.applyGCP(o, ev.Time)
	}
}

// completeGCP takes the pending operations for which done reports true:
// those begun are taken as done when their first entry was logged, in
// the order they began; the outcomes kept for a first are dropped.
func (inv *Inventory) completeGCP(done func(*gcpOp) bool) {
	if len(inv.gcpOps) == 0 {
		return
	}
	var due []*gcpOp
	for k, o := range inv.gcpOps {
		if done(o) {
			delete(inv.gcpOps, k)
			if !o.ended {
				due = append(due, o)
			}
		}
	}
	slices.SortStableFunc(due, func(a, b *gcpOp) int { return a.at.Compare(b.at) })
	for _, o := range due {
		inv.applyGCP(o, o.at)
	}
}

// applyGCP makes or ends an instance at t.
func (inv *Inventory) applyGCP(o *gcpOp, t time.Time) {
	if o.verb == "delete" {
		inv.End(o.asset, "", t)
		return
	}
	for _, f := range o.facts {
		inv.Add(Fact{Asset: o.asset, Attr: f.attr, Value: f.value, From: t, Source: o.src})
	}
}

// gcpInstance reads an instance's resource name,
// projects/PROJECT/zones/ZONE/instances/NAME, into the id the inventory
// files it by, with the project by id where the entry's own project (the
// event's account) gives it and the name gives a number.
func gcpInstance(resourceName, account string) (id, project, zone, name string, ok bool) {
	p := strings.Split(resourceName, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "zones" || p[4] != "instances" || p[1] == "" || p[3] == "" || p[5] == "" {
		return "", "", "", "", false
	}
	project, zone, name = p[1], p[3], p[5]
	if projectNumber(project) && account != "" && !projectNumber(account) && !strings.Contains(account, "/") {
		project = account
	}
	return "projects/" + project + "/zones/" + zone + "/instances/" + name, project, zone, name, true
}

// gcpSource names the entry, or the operation, facts come from.
func gcpSource(ev *event.Event, op string) string {
	src := "gcp.audit:" + ev.Action
	if id := cmpOr(op, ev.ID); id != "" {
		src += ":" + id
	}
	return src
}

// projectNumber reports whether s is a project's number, not its id,
// which starts with a letter.
func projectNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// azureKinds are the resource types whose writes and deletes make and end
// assets, in lower case, with the kind of asset each is.
var azureKinds = map[string]string{
	"microsoft.compute/virtualmachines":   "instance",
	"microsoft.network/networkinterfaces": "network-interface",
	"microsoft.network/publicipaddresses": "public-ip",
}

// observeAzure adds what an Azure activity log record says of assets.
func (inv *Inventory) observeAzure(ev *event.Event) {
	if ev.Outcome.Result != event.OutcomeSuccess || len(ev.Resources) == 0 {
		return
	}
	op := strings.ToLower(ev.Action)
	typ, verb := path.Dir(op), path.Base(op)
	kind := azureKinds[typ]
	if kind == "" || (verb != "write" && verb != "delete") {
		return
	}
	// The resource itself, …/providers/TYPE/NAME, not one under it.
	res := ev.Resources[0]
	id := strings.ToLower(res)
	i := strings.LastIndex(id, "/providers/")
	if i < 0 || !strings.HasPrefix(id, "/subscriptions/") {
		return
	}
	name, ok := strings.CutPrefix(id[i+len("/providers/"):], typ+"/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return
	}
	a := Asset{Kind: kind, ID: id, Provider: "azure", Account: ev.Cloud.Account, Region: ev.Cloud.Region}
	if verb == "delete" {
		inv.End(a, "", ev.Time)
		return
	}
	src := "azure.activity:" + ev.Action
	if ev.ID != "" {
		src += ":" + ev.ID
	}
	inv.Add(Fact{Asset: a, Attr: "exists", Value: "true", From: ev.Time, Source: src})
	inv.Add(Fact{Asset: a, Attr: "name", Value: res[strings.LastIndexByte(res, '/')+1:], From: ev.Time, Source: src})
}
