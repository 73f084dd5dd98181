package inventory

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file reads AWS Config configuration items.

// A configItem is an AWS Config configuration item: as delivered to S3,
// and as the API and the CLI give it (accountId, arn, the configuration as
// a string, times in seconds).
type configItem struct {
	CaptureTime   json.RawMessage `json:"configurationItemCaptureTime"`
	Status        string          `json:"configurationItemStatus"`
	ResourceType  string          `json:"resourceType"`
	ResourceID    string          `json:"resourceId"`
	ResourceName  string          `json:"resourceName"`
	ARN           string          `json:"arn"` // ARN in S3 files: encoding/json matches either
	AWSAccountID  string          `json:"awsAccountId"`
	AccountID     string          `json:"accountId"`
	Region        string          `json:"awsRegion"`
	Tags          json.RawMessage `json:"tags"`
	Configuration json.RawMessage `json:"configuration"`
}

func (ci *configItem) what() string {
	return fmt.Sprintf("%.64s %.128s", cmp.Or(ci.ResourceType, "configuration item"), ci.ResourceID)
}

// The parts of configurations read: of instances (as EC2's
// DescribeInstances gives them), network interfaces, Elastic IPs, IAM
// users and roles.
type (
	instanceConfig struct {
		PrivateIPAddress string `json:"privateIpAddress"`
		PublicIPAddress  string `json:"publicIpAddress"`
		ImageID          string `json:"imageId"`
		InstanceType     string `json:"instanceType"`
		SubnetID         string `json:"subnetId"`
		State            *struct {
			Name string `json:"name"`
		} `json:"state"`
		NetworkInterfaces []interfaceConfig `json:"networkInterfaces"`
	}
	interfaceConfig struct {
		PrivateIPAddress   string `json:"privateIpAddress"`
		SubnetID           string `json:"subnetId"`
		PrivateIPAddresses []struct {
			PrivateIPAddress string             `json:"privateIpAddress"`
			Association      *associationConfig `json:"association"`
		} `json:"privateIpAddresses"`
		Association *associationConfig `json:"association"`
		Attachment  *struct {
			InstanceID string `json:"instanceId"`
		} `json:"attachment"`
	}
	associationConfig struct {
		PublicIP string `json:"publicIp"`
	}
	eipConfig struct {
		PublicIP           string `json:"publicIp"`
		InstanceID         string `json:"instanceId"`
		NetworkInterfaceID string `json:"networkInterfaceId"`
	}
	iamConfig struct {
		UserName string `json:"userName"`
		RoleName string `json:"roleName"`
	}
)

// configItem adds what a configuration item says.
func (sr *snapReader) configItem(ci *configItem, line int) {
	fail := func(reason string) { sr.skip(line, ci.what()+": "+reason) }
	if ci.ResourceType == "" {
		fail("no resourceType")
		return
	}
	if ci.ResourceID == "" {
		fail("no resourceId")
		return
	}
	at, err := parseCaptureTime(ci.CaptureTime)
	if err != nil {
		fail("configurationItemCaptureTime: " + err.Error())
		return
	}
	kind, ok := configKind(ci.ResourceType)
	if !ok {
		fail("not a resource type")
		return
	}
	a := Asset{Kind: kind, ID: ci.ResourceID, Provider: "aws", Account: cmp.Or(ci.AWSAccountID, ci.AccountID), Region: ci.Region}
	if (kind == "user" || kind == "role") && ci.ARN != "" {
		a.ID = ci.ARN
	}
	rec := snapRecord{asset: a, at: at, source: sr.source(line), covers: configCoverage}
	switch ci.Status {
	case configOK, configDiscovered, "":
	case configNotRecorded:
		rec.covers = notRecordedCoverage
	case configDeleted, configDeletedNotRecorded:
		rec.gone = true
		sr.add(rec)
		return
	default:
		fail(fmt.Sprintf("unknown configurationItemStatus %.40q", ci.Status))
		return
	}
	v := snapVals{rec: &rec}
	v.add("exists", "true")
	v.add("arn", ci.ARN)
	if rec.covers == notRecordedCoverage {
		v.add("name", ci.ResourceName)
		sr.add(rec)
		return
	}
	tags, err := parseTags(ci.Tags)
	if err != nil {
		fail("tags: " + err.Error())
		return
	}
	for _, t := range tags {
		v.add("tag:"+t.attr, t.value)
	}
	conf, err := configBytes(ci.Configuration)
	if err != nil {
		fail("configuration: " + err.Error())
		return
	}
	name := ci.ResourceName
	if conf == nil {
		rec.covers = itemCoverage
	} else {
		switch kind {
		case "instance":
			var c instanceConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			if c.State != nil && c.State.Name == "terminated" {
				rec.gone, rec.vals = true, nil
				sr.add(rec)
				return
			}
			v.ip("private_ip", c.PrivateIPAddress)
			v.ip("public_ip", c.PublicIPAddress)
			for _, ni := range c.NetworkInterfaces {
				v.iface(&ni)
			}
			v.add("image", c.ImageID)
			v.add("type", c.InstanceType)
			v.add("subnet", c.SubnetID)
		case "network-interface":
			var c interfaceConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			if c.Attachment == nil || c.Attachment.InstanceID == "" {
				v.iface(&c)
			}
			v.add("subnet", c.SubnetID)
		case "elastic-ip":
			var c eipConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			if c.InstanceID == "" && c.NetworkInterfaceID == "" {
				v.ip("public_ip", c.PublicIP)
			}
		case "user", "role":
			var c iamConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			name = cmp.Or(name, c.UserName, c.RoleName)
		}
	}
	if err != nil {
		fail("configuration: " + err.Error())
		return
	}
	if v.err != nil {
		fail(v.err.Error())
		return
	}
	v.add("name", name)
	sr.add(rec)
}

// snapVals gathers a record's values, once each, checking addresses.
type snapVals struct {
	rec  *snapRecord
	err  error
	seen map[attrVal]bool // the values, once there are many
}

func (v *snapVals) add(attr, value string) {
	if value == "" {
		return
	}
	av := attrVal{attr, value}
	if v.seen == nil && len(v.rec.vals) > 16 {
		v.seen = make(map[attrVal]bool, 2*len(v.rec.vals))
		for _, x := range v.rec.vals {
			v.seen[x] = true
		}
	}
	if v.seen[av] || (v.seen == nil && slices.Contains(v.rec.vals, av)) {
		return
	}
	if v.seen != nil {
		v.seen[av] = true
	}
	v.rec.vals = append(v.rec.vals, av)
}

// ip adds an address in its canonical form, the one the inventory is
// searched by.
func (v *snapVals) ip(attr, value string) {
	if value == "" {
		return
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(value))
	if err != nil {
		if v.err == nil {
			v.err = fmt.Errorf("bad %s %.64q", attr, value)
		}
		return
	}
	v.add(attr, ip.Unmap().String())
}

// iface adds a network interface's addresses.
func (v *snapVals) iface(ni *interfaceConfig) {
	v.ip("private_ip", ni.PrivateIPAddress)
	if ni.Association != nil {
		v.ip("public_ip", ni.Association.PublicIP)
	}
	for _, p := range ni.PrivateIPAddresses {
		v.ip("private_ip", p.PrivateIPAddress)
		if p.Association != nil {
			v.ip("public_ip", p.Association.PublicIP)
		}
	}
}

// configBytes returns an item's configuration: an object in S3 files, a
// string of JSON from the API. nil is none.
func configBytes(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if s = strings.TrimSpace(s); s == "" || s == "null" {
			return nil, nil
		}
		raw = []byte(s)
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("not an object: %.40s", raw)
	}
	return raw, nil
}

// configKinds are the kinds of the resource types the inventory knows by
// other names than configKind makes.
var configKinds = map[string]string{
	"AWS::EC2::Instance":                        "instance",
	"AWS::EC2::NetworkInterface":                "network-interface",
	"AWS::EC2::EIP":                             "elastic-ip",
	"AWS::EC2::SecurityGroup":                   "security-group",
	"AWS::EC2::Subnet":                          "subnet",
	"AWS::EC2::VPC":                             "vpc",
	"AWS::EC2::Volume":                          "volume",
	"AWS::IAM::User":                            "user",
	"AWS::IAM::Role":                            "role",
	"AWS::IAM::Group":                           "group",
	"AWS::IAM::Policy":                          "policy",
	"AWS::Lambda::Function":                     "function",
	"AWS::S3::Bucket":                           "bucket",
	"AWS::RDS::DBInstance":                      "db-instance",
	"AWS::RDS::DBCluster":                       "db-cluster",
	"AWS::DynamoDB::Table":                      "table",
	"AWS::KMS::Key":                             "key",
	"AWS::ElasticLoadBalancing::LoadBalancer":   "load-balancer",
	"AWS::ElasticLoadBalancingV2::LoadBalancer": "load-balancer",
}

// configKind returns the kind of a resource type: a known one's, or its
// service and type (AWS::SNS::Topic: sns-topic).
func configKind(typ string) (string, bool) {
	if k, ok := configKinds[typ]; ok {
		return k, true
	}
	parts := strings.Split(typ, "::")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" || len(typ) > 256 {
		return "", false
	}
	return strings.ToLower(parts[1]) + "-" + kebab(parts[2]), true
}

// kebab writes a CamelCase name in lower case, its words joined by '-':
// DBInstance is db-instance.
func kebab(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// parseCaptureTime parses an item's time: RFC 3339 in S3 files and the
// CLI's output, seconds since 1970 in the API's.
func parseCaptureTime(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		return parseSnapTime(s)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("none")
	}
	return parseEpoch(string(raw))
}

// parseSnapTime parses a time: RFC 3339, the same without a zone (UTC) or
// with a space for the T, a date, or seconds or milliseconds since 1970.
func parseSnapTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("none")
	}
	if len(s) >= 9 && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:") {
		return parseEpoch(s)
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return checkTime(t)
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %.40q", s)
}

// parseEpoch parses seconds since 1970, with a fraction, or milliseconds.
func parseEpoch(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("not a time: %.40q", s)
	}
	if f > 1e11 { // milliseconds: 1e11 seconds is the year 5138
		f /= 1e3
	}
	if f < 0 || f > 253402300799 { // 9999-12-31T23:59:59Z
		return time.Time{}, fmt.Errorf("time out of range: %.40q", s)
	}
	sec, frac := math.Modf(f)
	// To the millisecond: a float64 of seconds holds no finer.
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC(), nil
}

// checkTime refuses times a Fact could not be written out with.
func checkTime(t time.Time) (time.Time, error) {
	t = t.UTC()
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time out of range: %s", t.Format(time.RFC3339))
	}
	return t, nil
}

// parseTags reads tags: an object of key to value (items, JSON rows), a
// list of {"Key":…,"Value":…} (as the EC2 API gives them), or a string of
// key=value pairs separated by ';'.
func parseTags(raw json.RawMessage) ([]attrVal, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var out []attrVal
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			s, err := jsonScalar(v)
			if err != nil {
				return nil, fmt.Errorf("tag %.64q: %w", k, err)
			}
			out = append(out, attrVal{k, s})
		}
	case '[':
		var l []struct{ Key, Value *string }
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, err
		}
		for _, t := range l {
			if t.Key == nil {
				return nil, errors.New("a tag without a key")
			}
			v := ""
			if t.Value != nil {
				v = *t.Value
			}
			out = append(out, attrVal{*t.Key, v})
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return parseTagText(s)
	default:
		return nil, fmt.Errorf("not tags: %.40s", raw)
	}
	slices.SortFunc(out, func(a, b attrVal) int { return strings.Compare(a.attr, b.attr) })
	return out, nil
}

// parseTagText reads tags written k=v;k2=v2, or as JSON.
func parseTagText(s string) ([]attrVal, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
		return parseTags(json.RawMessage(s))
	}
	var out []attrVal
	for kv := range strings.SplitSeq(s, ";") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("want key=value, not %.64q", kv)
		}
		out = append(out, attrVal{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out, nil
}

// jsonScalar returns a JSON string, number or boolean as text; null as "".
func jsonScalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		return "", fmt.Errorf("not a string: %.40s", raw)
	}
	return string(raw), nil
}

// Rows
