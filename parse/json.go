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

// timeFields are the fields tried, in order, for the time of a generic
// JSON record when no time field is configured.
var timeFields = []string{
	"@timestamp", "timestamp", "time", "eventTime", "EventTime", "event_time",
	"ts", "date", "datetime", "created_at", "createdAt", "CreationTime",
	"p_event_time", "published", "updatedAt",
}

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
	ev.Source = "json"
	ev.Class = event.ClassOther
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
		for _, f := range timeFields {
			if v, ok := doc[f]; ok {
				if t, err := anyTime(v); err == nil {
					ev.Time = t
					break
				}
			}
		}
	}
	ev.Action = firstString(doc, "action", "eventName", "event", "operation", "Operation", "method")
	ev.Service = firstString(doc, "service", "eventSource", "app", "application", "Workload")
	ev.Actor.Name = firstString(doc, "user", "userName", "username", "actor", "UserId", "principal")
	ev.Host = firstString(doc, "host", "hostname", "Host")
	ev.Message = firstString(doc, "message", "msg", "Message")
	ev.UserAgent = firstString(doc, "user_agent", "userAgent", "UserAgent")
	if ip, err := netip.ParseAddr(firstString(doc, "src_ip", "source_ip", "sourceIPAddress", "ClientIP", "client_ip", "ip", "srcaddr", "remote_addr")); err == nil {
		ev.SrcIP = ip.Unmap()
	}
	if ip, err := netip.ParseAddr(firstString(doc, "dst_ip", "dest_ip", "destination_ip", "dstaddr")); err == nil {
		ev.DstIP = ip.Unmap()
	}
	ev.Cloud.Account = firstString(doc, "account", "account_id", "accountId", "recipientAccountId", "OrganizationId")
	ev.ID = firstString(doc, "id", "event_id", "eventID", "Id", "uuid")
	return nil
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

// firstString returns the first of keys holding a non-empty scalar.
func firstString(doc map[string]any, keys ...string) string {
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
