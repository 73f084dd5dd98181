package inventory

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// mmdbNetwork is a network of a test database and its record.
type mmdbNetwork struct {
	cidr   string
	record mmdbtype.Map
}

// writeMMDB writes a MaxMind database of the given type and networks into
// dir, as MaxMind lays its GeoLite2 databases out.
func writeMMDB(t testing.TB, dir, dbType string, opts mmdbwriter.Options, networks []mmdbNetwork) string {
	t.Helper()
	opts.DatabaseType = dbType
	opts.RecordSize = 28
	opts.Languages = []string{"en", "de"}
	opts.Description = map[string]string{"en": "vigil test " + dbType}
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range networks {
		_, ipnet, err := net.ParseCIDR(n.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(ipnet, n.record); err != nil {
			t.Fatalf("insert %s: %v", n.cidr, err)
		}
	}
	path := filepath.Join(dir, dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// cityRec is a record in GeoLite2-City's layout, with the fields Lookup
// skips as well as those it reads.
func cityRec(country, registered, city string) mmdbtype.Map {
	m := mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148)},
		"location":  mmdbtype.Map{"latitude": mmdbtype.Float64(51.5), "longitude": mmdbtype.Float64(-0.1), "accuracy_radius": mmdbtype.Uint16(100)},
		"subdivisions": mmdbtype.Slice{
			mmdbtype.Map{"iso_code": mmdbtype.String("ENG"), "names": mmdbtype.Map{"en": mmdbtype.String("England")}},
		},
	}
	if country != "" {
		m["country"] = mmdbtype.Map{
			"iso_code":   mmdbtype.String(country),
			"geoname_id": mmdbtype.Uint32(2635167),
			"names":      mmdbtype.Map{"en": mmdbtype.String("Country " + country), "de": mmdbtype.String("Land " + country)},
		}
	}
	if registered != "" {
		m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(registered)}
	}
	if city != "" {
		m["city"] = mmdbtype.Map{
			"geoname_id": mmdbtype.Uint32(2643743),
			"names":      mmdbtype.Map{"de": mmdbtype.String(city + " (de)"), "en": mmdbtype.String(city)},
		}
	}
	return m
}

func asnRec(n uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(n),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

var cityNetworks = []mmdbNetwork{
	{"81.2.69.0/24", cityRec("GB", "GB", "London")},
	{"81.2.70.0/24", cityRec("GB", "GB", "")},       // a country, no city
	{"89.160.20.0/24", cityRec("", "SE", "")},       // only the registered country
	{"2001:218::/32", cityRec("JP", "JP", "Tokyo")}, // IPv6
	{"10.0.0.0/8", cityRec("US", "US", "Nowhere")},  // private: never looked up
}

var asnNetworks = []mmdbNetwork{
	{"81.2.69.0/24", asnRec(20712, "Andrews & Arnold Ltd")},
	{"2001:218::/32", asnRec(2914, "NTT America, Inc.")},
	{"12.81.92.0/22", asnRec(7018, "AT&T Services, Inc.")},
}

func TestGeoIPLookup(t *testing.T) {
	dir := t.TempDir()
	reserved := mmdbwriter.Options{IncludeReservedNetworks: true}
	city := writeMMDB(t, dir, "GeoLite2-City", reserved, cityNetworks)
	asn := writeMMDB(t, dir, "GeoLite2-ASN", reserved, asnNetworks)
	// An IPv6 tree without the ::ffff:0:0/96 alias to its IPv4 part: a
	// mapped address finds its IPv4 network only because Lookup unmaps it.
	noAlias := writeMMDB(t, t.TempDir(), "GeoLite2-City", mmdbwriter.Options{DisableIPv4Aliasing: true}, cityNetworks[:4])
	// An IPv4 tree, in which IPv6 lookups fail.
	v4only := writeMMDB(t, t.TempDir(), "GeoLite2-Country", mmdbwriter.Options{IPVersion: 4}, cityNetworks[:3])

	for _, tc := range []struct {
		name      string
		city, asn string
		addr      string
		want      Geo
	}{
		{"city and asn", city, asn, "81.2.69.142", Geo{"GB", "London", 20712, "Andrews & Arnold Ltd"}},
		{"network start", city, asn, "81.2.69.0", Geo{"GB", "London", 20712, "Andrews & Arnold Ltd"}},
		{"mapped", city, asn, "::ffff:81.2.69.142", Geo{"GB", "London", 20712, "Andrews & Arnold Ltd"}},
		{"mapped without alias", noAlias, "", "::ffff:81.2.69.142", Geo{Country: "GB", City: "London"}},
		{"with zone", city, asn, "2001:218::1%eth0", Geo{"JP", "Tokyo", 2914, "NTT America, Inc."}},
		{"country only", city, asn, "81.2.70.1", Geo{Country: "GB"}},
		{"registered country", city, asn, "89.160.20.112", Geo{Country: "SE"}},
		{"ipv6", city, asn, "2001:218:1:2::3", Geo{"JP", "Tokyo", 2914, "NTT America, Inc."}},
		{"asn only", city, asn, "12.81.92.1", Geo{ASN: 7018, ASOrg: "AT&T Services, Inc."}},
		{"miss", city, asn, "8.8.8.8", Geo{}},
		{"ipv6 miss", city, asn, "2a00:1450::1", Geo{}},
		{"private, though listed", city, asn, "10.1.2.3", Geo{}},
		{"loopback", city, asn, "127.0.0.1", Geo{}},
		{"link-local", city, asn, "fe80::1", Geo{}},
		{"unique local", city, asn, "fd00::1", Geo{}},
		{"invalid", city, asn, "", Geo{}},
		{"no city database", "", asn, "81.2.69.142", Geo{ASN: 20712, ASOrg: "Andrews & Arnold Ltd"}},
		{"no asn database", city, "", "81.2.69.142", Geo{Country: "GB", City: "London"}},
		{"no databases", "", "", "81.2.69.142", Geo{}},
		{"ipv4 database", v4only, "", "81.2.69.142", Geo{Country: "GB", City: "London"}},
		{"ipv6 in ipv4 database", v4only, "", "2001:218::1", Geo{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := OpenGeoIP(tc.city, tc.asn)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			var addr netip.Addr
			if tc.addr != "" {
				addr = netip.MustParseAddr(tc.addr)
			}
			if got := g.Lookup(addr); got != tc.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
			}
		})
	}
}

func TestGeoIPOpenErrors(t *testing.T) {
	dir := t.TempDir()
	city := writeMMDB(t, dir, "GeoLite2-City", mmdbwriter.Options{}, cityNetworks[:1])
	asn := writeMMDB(t, dir, "GeoLite2-ASN", mmdbwriter.Options{}, asnNetworks[:1])
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, city, asn string
		err             string
	}{
		{"missing", filepath.Join(dir, "missing.mmdb"), "", "missing.mmdb: open"},
		{"garbage", garbage, "", "garbage.mmdb: "},
		{"asn as city", asn, "", `GeoLite2-ASN.mmdb: its type is "GeoLite2-ASN", where City or Country was wanted`},
		{"city as asn", city, city, `GeoLite2-City.mmdb: its type is "GeoLite2-City", where ASN was wanted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := OpenGeoIP(tc.city, tc.asn)
			if err == nil {
				g.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err %q, want it to say %q", err, tc.err)
			}
		})
	}
}

func TestGeoIPClose(t *testing.T) {
	dir := t.TempDir()
	g, err := OpenGeoIP(writeMMDB(t, dir, "GeoLite2-City", mmdbwriter.Options{}, cityNetworks[:1]), writeMMDB(t, dir, "GeoLite2-ASN", mmdbwriter.Options{}, asnNetworks[:1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var nilGeo *GeoIP
	if got := nilGeo.Lookup(netip.MustParseAddr("81.2.69.142")); got != (Geo{}) {
		t.Errorf("nil GeoIP found %+v", got)
	}
	if err := nilGeo.Close(); err != nil {
		t.Error(err)
	}
}

func TestGeoIPConcurrent(t *testing.T) {
	dir := t.TempDir()
	g, err := OpenGeoIP(writeMMDB(t, dir, "GeoLite2-City", mmdbwriter.Options{}, cityNetworks[:4]), writeMMDB(t, dir, "GeoLite2-ASN", mmdbwriter.Options{}, asnNetworks))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	addrs := []netip.Addr{netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("2001:218::1"), netip.MustParseAddr("8.8.8.8")}
	var want []Geo
	for _, a := range addrs {
		want = append(want, g.Lookup(a))
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 3000 {
				if got := g.Lookup(addrs[i%3]); got != want[i%3] {
					t.Errorf("Lookup(%s) = %+v, want %+v", addrs[i%3], got, want[i%3])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestGeoIPAllocs(t *testing.T) {
	dir := t.TempDir()
	g, err := OpenGeoIP(writeMMDB(t, dir, "GeoLite2-City", mmdbwriter.Options{}, cityNetworks[:4]), writeMMDB(t, dir, "GeoLite2-ASN", mmdbwriter.Options{}, asnNetworks))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, s := range []string{"81.2.69.142", "2001:218::1", "8.8.8.8", "10.0.0.1"} {
		addr := netip.MustParseAddr(s)
		g.Lookup(addr) // fills the decoders' string caches
		if n := testing.AllocsPerRun(100, func() { g.Lookup(addr) }); n != 0 {
			t.Errorf("Lookup(%s): %v allocations", s, n)
		}
	}
}

func BenchmarkGeoIPLookup(b *testing.B) {
	dir := b.TempDir()
	g, err := OpenGeoIP(writeMMDB(b, dir, "GeoLite2-City", mmdbwriter.Options{}, cityNetworks[:4]), writeMMDB(b, dir, "GeoLite2-ASN", mmdbwriter.Options{}, asnNetworks))
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	addr := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	for b.Loop() {
		g.Lookup(addr)
	}
}
