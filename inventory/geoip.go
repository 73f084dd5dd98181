package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// This file places addresses: their country and city, and the network
// (autonomous system) that announces them, from MaxMind databases the user
// supplies: we ship none, as their licence is the user's to accept.

// Geo is where an address is, and whose network it is in. The zero Geo
// says nothing is known.
type Geo struct {
	Country string // ISO 3166-1 alpha-2 code, "US"
	City    string // English name
	ASN     uint32
	ASOrg   string
}

// GeoIP looks addresses up in MaxMind databases. Its methods are safe for
// concurrent use.
type GeoIP struct {
	city *maxminddb.Reader // GeoLite2-City or -Country layout, or nil
	asn  *maxminddb.Reader // GeoLite2-ASN layout, or nil
}

// cityRecord is the part of a City or Country record Lookup reads: the
// decoder fills only the fields named, and skips the rest (subdivisions,
// other languages, coordinates) without allocating them.
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	// RegisteredCountry stands in where a block has no country of use
	// (anycast, satellite).
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	City struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

type geoRecords struct {
	city cityRecord
	asn  asnRecord
}

var recordPool = sync.Pool{New: func() any { return new(geoRecords) }}

// OpenGeoIP opens a City (or Country) database and an ASN database in the
// GeoLite2 or GeoIP2 layouts. Either path may be "" to go without it. The
// files are memory-mapped: replace them by renaming a new file over them,
// never by rewriting them in place, and open a new GeoIP to read the new
// data.
func OpenGeoIP(cityPath, asnPath string) (*GeoIP, error) {
	g := &GeoIP{}
	var err error
	if cityPath != "" {
		if g.city, err = openMMDB(cityPath, "City", "Country"); err != nil {
			return nil, err
		}
	}
	if asnPath != "" {
		if g.asn, err = openMMDB(asnPath, "ASN"); err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// openMMDB opens a database, checking its type names one of kinds: a City
// database given as the ASN one would otherwise decode to zero values, and
// lookups would fail silently.
func openMMDB(path string, kinds ...string) (*maxminddb.Reader, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening GeoIP database %s: %w", path, err)
	}
	for _, k := range kinds {
		if strings.Contains(db.Metadata.DatabaseType, k) {
			return db, nil
		}
	}
	db.Close()
	return nil, fmt.Errorf("opening GeoIP database %s: its type is %q, where %s was wanted", path, db.Metadata.DatabaseType, strings.Join(kinds, " or "))
}

// Lookup returns what the databases know of addr: the zero Geo for
// private, loopback and other non-public addresses, for addresses they do
// not list, and when they are damaged. An IPv4-mapped IPv6 address is
// looked up as its IPv4 address.
//
// Lookup allocates nothing once the databases' strings are in their
// decoders' caches, as a city's or an organization's name soon is.
func (g *GeoIP) Lookup(addr netip.Addr) Geo {
	var geo Geo
	if g == nil || !addr.IsValid() {
		return geo
	}
	addr = addr.Unmap().WithZone("")
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return geo
	}
	// Decode takes its destination as an any, which moves it to the heap:
	// records from a pool keep lookups from allocating.
	recs := recordPool.Get().(*geoRecords)
	defer recordPool.Put(recs)
	if g.city != nil {
		if res := g.city.Lookup(addr); res.Found() {
			recs.city = cityRecord{} // Decode leaves absent fields as they were
			if res.Decode(&recs.city) == nil {
				geo.Country = recs.city.Country.ISOCode
				if geo.Country == "" {
					geo.Country = recs.city.RegisteredCountry.ISOCode
				}
				geo.City = recs.city.City.Names.En
			}
		}
	}
	if g.asn != nil {
		if res := g.asn.Lookup(addr); res.Found() {
			recs.asn = asnRecord{}
			if res.Decode(&recs.asn) == nil {
				geo.ASN, geo.ASOrg = recs.asn.Number, recs.asn.Org
			}
		}
	}
	return geo
}

// Close releases the databases. No Lookup may run during or after it:
// callers that swap GeoIPs close the old one once its readers are done.
func (g *GeoIP) Close() error {
	if g == nil {
		return nil
	}
	var errs []error
	for _, db := range []*maxminddb.Reader{g.city, g.asn} {
		if db != nil {
			if err := db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing GeoIP database: %w", err))
			}
		}
	}
	g.city, g.asn = nil, nil
	return errors.Join(errs...)
}
