package parse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

func init() {
	registerJSON("json", "any JSON records; the event time is read from Options.TimeField or a usual time field", func(rec []byte, ev *event.Event) error {
		return parseGenericJSON(rec, ev, "")
	})
}

// timeKeys are the keys, loosely matched (see looseKey), tried in order
// for the time of a generic record when no time field is configured.
var timeKeys = []string{
	"timestamp", "time", "eventtime", "ts", "datetime", "eventdatetime", "date",
	"createdat", "creationtime", "pieventtime", "published", "updatedat",
}

// The keys, loosely matched, that generic records name normalized fields
// with, most specific first.
var (
	actionKeys    = []string{"action", "eventname", "event", "operation", "operationname", "method"}
	serviceKeys   = []string{"service", "eventsource", "app", "application", "workload"}
	actorKeys     = []string{"user", "username", "userid", "actor", "principal", "useridentity"}
	hostKeys      = []string{"host", "hostname"}
	messageKeys   = []string{"message", "msg"}
	userAgentKeys = []string{"useragent", "requestuseragent"}
	srcIPKeys     = []string{"srcip", "sourceip", "sourceipaddress", "clientip", "ip", "srcaddr", "remoteaddr", "callerip", "calleripaddress"}
	dstIPKeys     = []string{"dstip", "destip", "destinationip", "dstaddr"}
	accountKeys   = []string{"account", "accountid", "recipientaccountid", "organizationid", "projectid", "subscriptionid"}
	idKeys        = []string{"eventid", "id", "uuid", "requestid"}
	regionKeys    = []string{"region", "awsregion"}
)

// parseGenericJSON fills what it can recognize from any JSON object. The
// time comes from field (a dotted path) when given — a record without it
// is rejected — or else from the usual time fields, falling back to the
// receipt time.
func parseGenericJSON(rec []byte, ev *event.Event, field string) error {
	if len(rec) == 0 || rec[0] != '{' {
		return fmt.Errorf("JSON record is not an object")
	}
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(rec))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return jsonError(rec)
	}
	return fillGeneric(doc, ev, field)
}

// fillGeneric fills ev from a decoded record of unknown shape.
func fillGeneric(doc map[string]any, ev *event.Event, field string) error {
	ev.Source = "json"
	ev.Class = event.ClassOther
	keys := make(map[string]any, len(doc))
	addKeys := func(m map[string]any) {
		for k, v := range m {
			lk := looseKey(k)
			if _, dup := keys[lk]; !dup {
				keys[lk] = v
			}
		}
	}
	addKeys(doc)
	// An envelope (Splunk HEC, test fixtures) carries the event under
	// "event": what the envelope does not say, the event may.
	if inner, ok := doc["event"].(map[string]any); ok {
		delete(keys, "event")
		addKeys(inner)
	}
	if field != "" {
		v, ok := lookupPath(doc, field)
		if !ok {
			return fmt.Errorf("time field %q missing", field)
		}
		t, err := anyTime(v)
		if err != nil {
			return fmt.Errorf("time field %q: %w", field, err)
		}
		ev.Time = t
	} else {
		for _, k := range timeKeys {
			if v, ok := keys[k]; ok {
				if t, err := anyTime(v); err == nil {
					ev.Time = t
					break
				}
			}
		}
	}
	ev.Action = firstString(keys, actionKeys)
	ev.Service = firstString(keys, serviceKeys)
	ev.Actor.Name = firstString(keys, actorKeys)
	ev.Host = firstString(keys, hostKeys)
	ev.Message = firstString(keys, messageKeys)
	ev.UserAgent = firstString(keys, userAgentKeys)
	if ip, err := netip.ParseAddr(firstString(keys, srcIPKeys)); err == nil {
		ev.SrcIP = ip.Unmap()
	}
	if ip, err := netip.ParseAddr(firstString(keys, dstIPKeys)); err == nil {
		ev.DstIP = ip.Unmap()
	}
	ev.Cloud.Account = firstString(keys, accountKeys)
	ev.Cloud.Region = firstString(keys, regionKeys)
	ev.ID = firstString(keys, idKeys)
	return nil
}

// looseKey folds the spellings of one name together: "Source IP",
// "source_ip", "sourceIp" and "source-ip" are all "sourceip".
func looseKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		case r == ' ' || r == '_' || r == '-' || r == '.' || r == '@':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// lookupPath resolves a dotted path in a decoded document. A key that
// itself contains dots is found too: {"a.b": 1} answers "a.b".
func lookupPath(doc map[string]any, path string) (any, bool) {
	if v, ok := doc[path]; ok {
		return v, true
	}
	head, rest, found := strings.Cut(path, ".")
	if !found {
		return nil, false
	}
	for {
		if m, ok := doc[head].(map[string]any); ok {
			if v, ok := lookupPath(m, rest); ok {
				return v, true
			}
		}
		var next string
		next, rest, found = strings.Cut(rest, ".")
		if !found {
			return nil, false
		}
		head += "." + next
	}
}

// anyTime reads a time from a decoded JSON value: text or epoch number.
func anyTime(v any) (t time.Time, err error) {
	switch x := v.(type) {
	case string:
		return parseTime(x)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return t, fmt.Errorf("invalid number %s", x)
		}
		return epochTime(f)
	}
	return t, fmt.Errorf("not a time: %T", v)
}

// firstString returns the value of the first of keys holding a non-empty
// scalar.
func firstString(doc map[string]any, keys []string) string {
	for _, k := range keys {
		switch x := doc[k].(type) {
		case string:
			if x != "" {
				return x
			}
		case json.Number:
			return string(x)
		}
	}
	return ""
}
