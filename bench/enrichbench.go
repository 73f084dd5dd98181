package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/vigilsec/vigil/bench/corpus"
)

const (
	enrichName   = "vigil import (enriched)"
	noEnrichName = "vigil import --enrich=false"
)

// runEnrich answers what enrichment adds to ingest: `vigil import` of the
// corpus with a context section loading a million inventory intervals
// (a snapshot), a million threat-intel indicators, GeoIP City and ASN
// databases and a cloud's published ranges, against the same import with
// --enrich=false, taking turns going first. Detection is off on both
// sides, so that the share measured is of ingest alone (parse, ledger,
// store).
func runEnrich(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files := filepath.Join(c.corpusDir(), "AWSLogs")
	if err := warm(files); err != nil {
		return err
	}
	conf, err := c.enrichLookups()
	if err != nil {
		return err
	}
	bin, err := c.buildVigil(ctx)
	if err != nil {
		return err
	}
	runs, err := c.alternate(m.Events,
		func(int) (measure, error) {
			return c.cliImport(ctx, bin, enrichName, files, "--config", conf, "--detect=false", "--enrich=true")
		},
		func(int) (measure, error) {
			return c.cliImport(ctx, bin, noEnrichName, files, "--config", conf, "--detect=false", "--enrich=false")
		})
	if err != nil {
		return err
	}
	if err := c.checkEnriched(ctx, bin, conf, filepath.Join(c.corpusDir(), "AWSLogs")); err != nil {
		return err
	}
	with, without := runs[0], runs[1]
	report(c.out, fmt.Sprintf("import of %d CloudTrail events (%d gzip files, %.0f MB) enriched (%d inventory facts, %d indicators, GeoIP, ranges) and not",
		m.Events, m.Files, mb(m.Bytes), c.facts, c.indicators), with, without)
	// Throughput while ingesting: events over the import's own time, the
	// lookups' loading at start left out (it is paid once, not per event;
	// the process's time and CPU below include it).
	var lost []float64
	for i := range min(len(with), len(without)) {
		lost = append(lost, 1-without[i].ingest.Seconds()/with[i].ingest.Seconds())
	}
	added, addedCPU := addedCost(with, without)
	fmt.Fprintf(c.out, "\nenrichment costs of ingest throughput: median %.1f%% (runs: %s). Target: under 15%%\n"+
		"it adds to the whole process's time, start included: median %.1f%% (runs: %s); to its CPU time: median %.1f%% (runs: %s)\n",
		100*median(lost, cmpFloat), fmtPercents1(lost), 100*median(added, cmpFloat), fmtPercents1(added), 100*median(addedCPU, cmpFloat), fmtPercents1(addedCPU))
	return nil
}

// checkEnriched imports a corpus file enriched and searches it: the
// enriched side must have enriched, or its time says nothing.
func (c *config) checkEnriched(ctx context.Context, bin, conf, files string) error {
	data := filepath.Join(c.dir, "enrich-check")
	os.RemoveAll(data)
	defer os.RemoveAll(data)
	if out, err := exec.CommandContext(ctx, bin, "import", "--data", data, "--config", conf, "--detect=false", "-q", files).CombinedOutput(); err != nil {
		return fmt.Errorf("vigil import: %w: %s", err, out)
	}
	for _, q := range []string{"intel:*", "src_asset:*", "src_country:*", "src_cloud:*"} {
		out, err := exec.CommandContext(ctx, bin, "search", "--data", data, "--format", "ndjson", q+" | stats count()").CombinedOutput()
		if err != nil {
			return fmt.Errorf("vigil search: %w: %s", err, out)
		}
		if strings.Contains(string(out), `"count":0`) {
			return fmt.Errorf("the enriched import has no event with %s", q)
		}
		c.logf("enriched: %s %s", q, strings.TrimSpace(string(out)))
	}
	return nil
}

// enrichLookups writes, once, the lookups of the enriched side and the
// config that loads them, and returns the config's path. They are drawn
// from a fixed seed, and name some of the corpus's own addresses, as a
// user's inventory and feeds would: 2% of its source addresses are on
// the intel list, 10% were an instance's public address, all are in the
// GeoIP databases.
func (c *config) enrichLookups() (string, error) {
	dir := filepath.Join(c.dir, fmt.Sprintf("enrich-lookups-f%d-i%d-s%d", c.facts, c.indicators, c.seed))
	conf := filepath.Join(dir, "vigil.yaml")
	if _, err := os.Stat(conf); err == nil {
		return conf, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	r := rand.New(rand.NewPCG(c.seed, 0x656e72696368)) // "enrich"
	addrs := corpus.Addresses(corpus.Options{Fixtures: c.fixtures, Events: c.events, Seed: c.seed})
	steps := []struct {
		name  string
		write func(*rand.Rand, []string, string) error
	}{
		{"intel.txt", func(r *rand.Rand, addrs []string, path string) error {
			return writeBenchIntel(r, addrs, path, c.indicators)
		}},
		{"inventory.csv", func(r *rand.Rand, addrs []string, path string) error {
			return writeBenchInventory(r, addrs, path, c.facts)
		}},
		{"GeoLite2-City.mmdb", writeBenchCity},
		{"GeoLite2-ASN.mmdb", writeBenchASN},
		{"ip-ranges.json", writeBenchRanges},
	}
	for _, s := range steps {
		c.logf("writing %s", s.name)
		if err := s.write(r, addrs, filepath.Join(dir, s.name)); err != nil {
			return "", fmt.Errorf("writing %s: %w", s.name, err)
		}
	}
	text := fmt.Sprintf(`context:
  geoip: {city: %q, asn: %q}
  intel: [%q]
  cloud_ranges: [%q]
  inventory: [%q]
`, filepath.Join(dir, "GeoLite2-City.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb"), filepath.Join(dir, "intel.txt"),
		filepath.Join(dir, "ip-ranges.json"), filepath.Join(dir, "inventory.csv"))
	// The config last, so that its presence says the lookups are whole.
	return conf, os.WriteFile(conf, []byte(text), 0o644)
}

func randIPv4(r *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(1 + r.IntN(222)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
}

// writeFile writes a file through a buffer.
func writeFile(path string, fn func(w *bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = fn(w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeBenchIntel writes a plain-text list of n indicators: 2% of the
// corpus's addresses, then random addresses (55%), networks from /24 to
// /30 (10%), domains (30%) and SHA-256 hashes (5%).
func writeBenchIntel(r *rand.Rand, addrs []string, path string, n int) error {
	return writeFile(path, func(w *bufio.Writer) error {
		i := 0
		for ; i*50 < len(addrs) && i < n; i++ {
			fmt.Fprintln(w, addrs[i*50])
		}
		for ; i < n; i++ {
			switch x := r.IntN(100); {
			case x < 55:
				fmt.Fprintln(w, randIPv4(r))
			case x < 65:
				p, _ := randIPv4(r).Prefix(24 + r.IntN(7))
				fmt.Fprintln(w, p)
			case x < 95:
				fmt.Fprintf(w, "%x.%x-%d.example\n", r.Uint32(), r.Uint32()&0xffff, r.IntN(1000))
			default:
				fmt.Fprintf(w, "%016x%016x%016x%016x\n", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
			}
		}
		return nil
	})
}

// writeBenchInventory writes a snapshot of n/2 instances, each with a
// private and a public address held since before the corpus: n address
// intervals (and an existence interval each). A tenth of the corpus's
// addresses are among the public ones.
func writeBenchInventory(r *rand.Rand, addrs []string, path string, n int) error {
	return writeFile(path, func(w *bufio.Writer) error {
		fmt.Fprintln(w, "kind,id,provider,account,region,private_ip,public_ip,from")
		for i := range n / 2 {
			public := randIPv4(r).String()
			if i%10 == 0 && i/10 < len(addrs) {
				public = addrs[i/10]
			}
			private := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			fmt.Fprintf(w, "instance,i-%017x,aws,%012d,us-east-1,%s,%s,2024-06-01T00:00:00Z\n", r.Uint64()>>4, r.Int64N(1e12), private, public)
		}
		return nil
	})
}

// writeMMDBFile writes a MaxMind database of networks and their records.
func writeMMDBFile(path, dbType string, networks map[netip.Prefix]mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 28, IPVersion: 6, IncludeReservedNetworks: true})
	if err != nil {
		return err
	}
	for p, rec := range networks {
		_, ipnet, _ := net.ParseCIDR(p.String())
		if err := tree.Insert(ipnet, rec); err != nil {
			return fmt.Errorf("inserting %s: %w", p, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var benchCountries = []string{"US", "DE", "FR", "GB", "NL", "JP", "BR", "IN", "SG", "AU"}

// writeBenchCity writes a City database: the /24 of every corpus address,
// and 100,000 other /24s.
func writeBenchCity(r *rand.Rand, addrs []string, path string) error {
	return writeMMDBFile(path, "GeoLite2-City", benchNetworks(r, addrs, 24, 100_000, func() mmdbtype.Map {
		cc := benchCountries[r.IntN(len(benchCountries))]
		return mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc), "names": mmdbtype.Map{"en": mmdbtype.String("Country " + cc)}},
			"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(fmt.Sprintf("City %d", r.IntN(5000)))}},
		}
	}))
}

// writeBenchASN writes an ASN database: the /16 of every corpus address,
// and 20,000 other /16s.
func writeBenchASN(r *rand.Rand, addrs []string, path string) error {
	return writeMMDBFile(path, "GeoLite2-ASN", benchNetworks(r, addrs, 16, 20_000, func() mmdbtype.Map {
		n := 1 + r.IntN(400000)
		return mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n),
			"autonomous_system_organization": mmdbtype.String(fmt.Sprintf("AS%d Networks", n)),
		}
	}))
}

// benchNetworks returns the network of the given length around every
// corpus address and around n random ones, each with a record rec makes.
func benchNetworks(r *rand.Rand, addrs []string, bits, n int, rec func() mmdbtype.Map) map[netip.Prefix]mmdbtype.Map {
	nets := map[netip.Prefix]mmdbtype.Map{}
	for _, a := range addrs {
		p, _ := netip.MustParseAddr(a).Prefix(bits)
		nets[p] = rec()
	}
	for range n {
		p, _ := randIPv4(r).Prefix(bits)
		nets[p] = rec()
	}
	return nets
}

// writeBenchRanges writes an ip-ranges.json the size of AWS's (about
// 9,000 IPv4 entries): 6,000 blocks listed under AMAZON, half of them
// again under EC2, as AWS lists its blocks.
func writeBenchRanges(r *rand.Rand, _ []string, path string) error {
	regions := []string{"us-east-1", "eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2"}
	return writeFile(path, func(w *bufio.Writer) error {
		fmt.Fprint(w, `{"syncToken":"1","createDate":"2024-07-01-00-00-00","prefixes":[`)
		for i := range 6000 {
			p, _ := randIPv4(r).Prefix(14 + r.IntN(13))
			region := regions[r.IntN(len(regions))]
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `{"ip_prefix":%q,"region":%q,"service":"AMAZON","network_border_group":%q}`, p, region, region)
			if i%2 == 0 {
				fmt.Fprintf(w, `,{"ip_prefix":%q,"region":%q,"service":"EC2","network_border_group":%q}`, p, region, region)
			}
		}
		fmt.Fprint(w, `],"ipv6_prefixes":[]}`)
		return nil
	})
}
