package ledger

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

func codecEvents() map[string]*event.Event {
	t0 := time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)
	return map[string]*event.Event{
		"zero": {},
		"full": {
			Time: t0, Received: t0.Add(time.Second), Skewed: true,
			Tenant: "acme", Source: "aws.cloudtrail", Class: event.ClassAPIActivity, ID: "e-1",
			Cloud:       event.Cloud{Provider: "aws", Account: "123456789012", Region: "eu-west-1"},
			Environment: "prod",
			Actor:       event.Actor{ID: "AIDAX", Type: "IAMUser", Name: "alice"},
			Session:     event.Session{ID: "ASIAX", Origin: "arn:aws:iam::1:user/alice"},
			SrcIP:       netip.MustParseAddr("203.0.113.7"), DstIP: netip.MustParseAddr("2001:db8::1"),
			SrcPort: 443, DstPort: 65535,
			Host: "h", UserAgent: "aws-cli/2", Service: "iam.amazonaws.com", Action: "CreateUser",
			Resources: []string{"arn:a", "", "arn:b"},
			Outcome:   event.Outcome{Result: event.OutcomeFailure, Code: "AccessDenied"},
			Message:   "msg", Origin: "file.json:12",
			Raw: []byte(`{"eventName":"CreateUser"}`), Doc: []byte(`{"a":1}`),
		},
		"unicode and invalid utf-8": {
			Tenant: "société", Actor: event.Actor{Name: "李雷 🚀"}, Message: "bad \xff\xfe utf-8",
			Raw: []byte{0xff, 0x00, 0xc3, 0x28}, Resources: []string{"\x00", "é"},
		},
		"enriched": {
			Time: t0, Tenant: "acme", Raw: []byte("x"),
			Context: event.Context{
				Src:  event.Place{Asset: "i-0abc", Owner: "payments", Country: "DE", City: "Berlin", ASN: 4294967295, ASOrg: "Example AS", Cloud: "aws/EC2/eu-central-1"},
				Dst:  event.Place{Country: "US"},
				Team: "platform",
				Intel: []event.IntelHit{
					{List: "feodo", Indicator: "203.0.113.7", Type: "botnet_cc"},
					{List: "domains", Indicator: "evil.example"},
				},
			},
		},
		"only a team":              {Context: event.Context{Team: "t"}},
		"empty doc is not nil doc": {Raw: []byte("x"), Doc: []byte{}},
		"zone and 4in6": {
			SrcIP: netip.MustParseAddr("fe80::1%eth0"), DstIP: netip.MustParseAddr("::ffff:10.0.0.1"),
		},
		"times at the edges": {
			Time:     time.Unix(0, 0).UTC(),
			Received: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		},
		"far past": {Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Received: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
		"non-UTC":  {Time: time.Date(2024, 1, 1, 8, 0, 0, 5, time.FixedZone("X", 3600))},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for name, e := range codecEvents() {
		t.Run(name, func(t *testing.T) {
			e.Seq = 42 // not content
			b := EncodeEvent(e)
			// Events without a context keep version 1's bytes.
			version := byte(codecV1)
			if !e.Context.IsZero() {
				version = codecV2
			}
			if b[0] != version {
				t.Fatalf("version byte = %d, want %d", b[0], version)
			}
			// Append sizes its buffer with encodedSize, once.
			if n := encodedSize(e); n < len(b) {
				t.Errorf("encodedSize = %d, less than the %d bytes of the encoding", n, len(b))
			}
			got, err := DecodeEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			want := *e
			want.Seq = 0
			for _, p := range []*time.Time{&want.Time, &want.Received} {
				if !p.IsZero() {
					*p = p.UTC()
				}
			}
			if len(want.Raw) == 0 {
				want.Raw = nil
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, &want)
			}
			if (got.Doc == nil) != (e.Doc == nil) {
				t.Errorf("Doc nil = %v, want %v", got.Doc == nil, e.Doc == nil)
			}
			if !bytes.Equal(EncodeEvent(got), b) {
				t.Error("re-encoding differs")
			}
		})
	}
}

func TestCodecDeterministic(t *testing.T) {
	e := codecEvents()["full"]
	a := EncodeEvent(e)
	c := *e
	c.Time = e.Time.In(time.FixedZone("Y", -7200))
	c.Seq = 99
	if !bytes.Equal(a, EncodeEvent(&c)) {
		t.Error("same instant in another zone, or another Seq, encodes differently")
	}
}

// TestCodecCoversEvent fails when event.Event gains a field, as a
// reminder that the codec must learn it (under a new version).
func TestCodecCoversEvent(t *testing.T) {
	var count func(reflect.Type) int
	count = func(t reflect.Type) int {
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[event.Event]().PkgPath() {
			return 1
		}
		n := 0
		for f := range t.Fields() {
			n += count(f.Type)
		}
		return n
	}
	if n := count(reflect.TypeFor[event.Event]()); n != 48 {
		t.Fatalf("event.Event has %d fields; the codec knows 48: update EncodeEvent under a new version", n)
	}
}

func TestDecodeEventRejects(t *testing.T) {
	full := codecEvents()["full"]
	full.Context = codecEvents()["enriched"].Context
	good := EncodeEvent(full)
	cases := map[string][]byte{
		"empty":              nil,
		"version":            append([]byte{9}, good[1:]...),
		"trailing":           append(append([]byte{}, good...), 0),
		"bad bool":           func() []byte { b := EncodeEvent(&event.Event{}); b[3] = 2; return b }(),
		"long varint":        {codecV1, 0, 0, 0, 0x80, 0x00},
		"huge length":        {codecV1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad time tag":       {codecV1, 7},
		"wide in range":      append([]byte{codecV1, timeWide}, make([]byte, 12)...),
		"nano overflow":      {codecV1, timeNano, 0x80, 0, 0, 0, 0, 0, 0, 0},
		"bad addr":           func() []byte { b := EncodeEvent(&event.Event{}); b = b[:17]; return append(b, 3, 1, 2, 3) }(),
		"v2 without context": append([]byte{codecV2}, EncodeEvent(&event.Event{})[1:]...),
		"v2 huge intel": func() []byte {
			b := EncodeEvent(&event.Event{Context: event.Context{Team: "t"}})
			return append(b[:len(b)-1], 0xff, 0xff, 0x03)
		}(),
		"max resources": {codecV1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for i := range good {
		cases[fmt.Sprint("truncated at ", i)] = good[:i]
	}
	for name, b := range cases {
		if _, err := DecodeEvent(b); err == nil {
			t.Errorf("%s: DecodeEvent(%x) succeeded", name, b)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, e := range codecEvents() {
		f.Add(EncodeEvent(e))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		if got := EncodeEvent(e); !bytes.Equal(got, b) {
			t.Fatalf("decoded input re-encodes differently:\n in %x\nout %x", b, got)
		}
	})
}
