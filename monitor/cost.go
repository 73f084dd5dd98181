package monitor

// Cost exports: what the clouds bill, line by line, which this file sums
// into a daily cost per account and service: the series that shows
// crypto-mining in an account that was cheap the week before. Read, by
// their header's column names:
//
//   - AWS Cost and Usage Reports (lineItem/UsageAccountId, …) and Data
//     Exports' CUR 2.0 (line_item_usage_account_id, …);
//   - FOCUS exports (SubAccountId, ChargePeriodStart, ServiceName,
//     BilledCost), which AWS, Azure and Google Cloud all give;
//   - Google Cloud's billing export (project.id, service.description,
//     usage_start_time, cost);
//   - Azure Cost Management exports (SubscriptionId, Date, MeterCategory,
//     CostInBillingCurrency).

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/metric"
)

// CostMetric is the metric of daily cost, labelled provider, account,
// service and currency.
const CostMetric = "cost"

// costColumns are the names each role's column goes by, lower case.
var costColumns = map[string][]string{
	"account":  {"lineitem/usageaccountid", "line_item_usage_account_id", "subaccountid", "project.id", "project_id", "subscriptionid", "subscriptionguid"},
	"start":    {"lineitem/usagestartdate", "line_item_usage_start_date", "chargeperiodstart", "usage_start_time", "date", "usagedatetime"},
	"service":  {"lineitem/productcode", "line_item_product_code", "servicename", "service.description", "service_description", "metercategory", "consumedservice"},
	"cost":     {"lineitem/unblendedcost", "line_item_unblended_cost", "billedcost", "cost", "costinbillingcurrency", "pretaxcost"},
	"currency": {"lineitem/currencycode", "line_item_currency_code", "billingcurrency", "currency", "billingcurrencycode", "currencycode"},
	"type":     {"lineitem/lineitemtype", "line_item_line_item_type", "chargecategory"},
	"provider": {"providername", "provider"},
}

// costFormats tell a file's cloud by a column only it has.
var costFormats = []struct{ column, provider string }{
	{"lineitem/usageaccountid", "aws"},
	{"line_item_usage_account_id", "aws"},
	{"project.id", "gcp"},
	{"project_id", "gcp"},
	{"subscriptionid", "azure"},
	{"subscriptionguid", "azure"},
	{"metercategory", "azure"},
}

// notUsage are the kinds of line that are not usage: a credit or a
// refund would hide the cost of what ran, and taxes follow it a month
// late.
var notUsage = map[string]bool{"credit": true, "refund": true, "tax": true, "bundleddiscount": true, "edpdiscount": true}

// CostStats says what a cost file gave.
type CostStats struct {
	Rows, Skipped int
	Skips         []CostSkip // the first few
	Series        int
	From, To      time.Time // the first and last day
}

// A CostSkip is a row not read, and why.
type CostSkip struct {
	Line   int
	Reason string
}

const maxCostSkips = 20

// ReadCost reads a cost export in CSV into daily cost series: the sum
// of each day's usage cost by provider, account, service and currency.
// A row without an account, a time or a cost that is a number is
// skipped and counted, with its line; a header that names none of the
// columns it needs is an error.
func ReadCost(r io.Reader) ([]metric.Series, CostStats, error) {
	var st CostStats
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, st, errors.New("cost export: empty file")
		}
		return nil, st, fmt.Errorf("cost export: header: %w", err)
	}
	col := map[string]int{}
	provider := ""
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		for role, names := range costColumns {
			for _, n := range names {
				if h == n {
					if _, ok := col[role]; !ok {
						col[role] = i
					}
				}
			}
		}
		for _, f := range costFormats {
			if h == f.column && provider == "" {
				provider = f.provider
			}
		}
	}
	var missing []string
	for _, role := range []string{"account", "start", "cost"} {
		if _, ok := col[role]; !ok {
			missing = append(missing, role)
		}
	}
	if len(missing) > 0 {
		return nil, st, fmt.Errorf("cost export: no %s column: not an AWS CUR, FOCUS, Google Cloud billing or Azure cost export", strings.Join(missing, ", "))
	}
	type key struct{ provider, account, service, currency string }
	sums := map[key]map[int64]float64{}
	var order []key
	skip := func(line int, reason string) {
		st.Skipped++
		if len(st.Skips) < maxCostSkips {
			st.Skips = append(st.Skips, CostSkip{line, reason})
		}
	}
	get := func(rec []string, role string) string {
		if i, ok := col[role]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrQuote) && !errors.Is(pe.Err, csv.ErrBareQuote) {
				return nil, st, fmt.Errorf("cost export: line %d: %w", line, err)
			}
			skip(line, "bad CSV: "+err.Error())
			continue
		}
		st.Rows++
		if notUsage[strings.ToLower(get(rec, "type"))] {
			continue
		}
		account, start := get(rec, "account"), get(rec, "start")
		if account == "" {
			skip(line, "no account")
			continue
		}
		day, err := costDay(start)
		if err != nil {
			skip(line, err.Error())
			continue
		}
		cost, err := strconv.ParseFloat(get(rec, "cost"), 64)
		if err != nil || math.IsNaN(cost) || math.IsInf(cost, 0) {
			skip(line, fmt.Sprintf("cost %.32q is not a number", get(rec, "cost")))
			continue
		}
		k := key{provider, account, get(rec, "service"), strings.ToUpper(get(rec, "currency"))}
		if p := strings.ToLower(get(rec, "provider")); p != "" {
			k.provider = costProvider(p)
		}
		if k.currency == "" {
			k.currency = "USD"
		}
		if sums[k] == nil {
			sums[k] = map[int64]float64{}
			order = append(order, k)
		}
		sums[k][day.Unix()] += cost
		if st.From.IsZero() || day.Before(st.From) {
			st.From = day
		}
		if day.After(st.To) {
			st.To = day
		}
	}
	var out []metric.Series
	for _, k := range order {
		s := metric.Series{Metric: CostMetric, Labels: metric.NewLabels(map[string]string{
			"provider": k.provider, "account": k.account, "service": k.service, "currency": k.currency})}
		for d := st.From; !d.After(st.To); d = d.Add(24 * time.Hour) {
			if v, ok := sums[k][d.Unix()]; ok {
				s.Samples = append(s.Samples, metric.Sample{Time: d, Value: v})
			}
		}
		out = append(out, s)
	}
	st.Series = len(out)
	return out, st, nil
}

// costProvider names a FOCUS ProviderName as vigil names clouds.
func costProvider(p string) string {
	switch {
	case strings.Contains(p, "amazon") || p == "aws":
		return "aws"
	case strings.Contains(p, "google") || p == "gcp":
		return "gcp"
	case strings.Contains(p, "microsoft") || strings.Contains(p, "azure"):
		return "azure"
	}
	return p
}

// costDay reads a line's start time, as the exports write it, and
// returns its day, in UTC.
func costDay(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05", "2006-01-02", "01/02/2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(24 * time.Hour), nil
		}
	}
	return time.Time{}, fmt.Errorf("start %.40q is not a time", s)
}
