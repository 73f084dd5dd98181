package parse

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vigilsec/vigil/event"
)

// The csv format reads comma-separated exports with a header line, the
// shape alerting tools and spreadsheets hand logs over in. Each row
// becomes a JSON object keyed by the header, read like a generic JSON
// record: the time from Options.TimeField or a usual time column.

func init() {
	register(&Format{
		Name:        "csv",
		Description: "CSV with a header line; each row is read like a generic JSON record",
		parse:       parseCSV,
	})
	registerSniffer("csv", sniffCSV)
}

func parseCSV(p *parser, r *bufio.Reader) error {
	lr := newLineReader(r, p.opts.MaxLine)
	var header []string
	for {
		raw, num, offset, tooLong, err := csvRecord(lr)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if tooLong {
			if err := p.reject(lr.errTooLong(), raw, num, offset); err != nil {
				return err
			}
			continue
		}
		if len(trimSpace(raw)) == 0 {
			continue
		}
		fields, err := splitCSV(raw)
		if err == nil && header == nil {
			header = fields
			continue
		}
		var ev *event.Event
		if err == nil {
			ev, err = csvEvent(header, fields, p.opts.TimeField)
		}
		if err != nil {
			err = p.reject(err, raw, num, offset)
		} else {
			err = p.event(ev, raw, num, offset)
		}
		if err != nil {
			return err
		}
	}
}

// csvRecord reads one record, which spans lines while a quoted field is
// open.
func csvRecord(lr *lineReader) (raw []byte, num, offset int64, tooLong bool, err error) {
	l, err := lr.next()
	if err != nil {
		return nil, 0, 0, false, err
	}
	raw, num, offset, tooLong = bytes.Clone(l.b), l.num, l.offset, l.tooLong
	for !tooLong && bytes.Count(raw, []byte{'"'})%2 == 1 {
		l, err := lr.next()
		if err == io.EOF {
			break // the unterminated quote is reported by splitCSV
		}
		if err != nil {
			return nil, 0, 0, false, err
		}
		if len(raw)+len(l.b) > lr.max {
			tooLong = true
			break
		}
		raw = append(append(raw, '\n'), l.b...)
	}
	return raw, num, offset, tooLong, nil
}

func splitCSV(raw []byte) ([]string, error) {
	cr := csv.NewReader(bytes.NewReader(raw))
	cr.FieldsPerRecord = -1
	fields, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("CSV: %v", pe.Err)
		}
		return nil, fmt.Errorf("CSV: %w", err)
	}
	return fields, nil
}

func csvEvent(header, fields []string, timeField string) (*event.Event, error) {
	if len(fields) != len(header) {
		return nil, fmt.Errorf("CSV row has %d fields, the header %d", len(fields), len(header))
	}
	doc := make(map[string]any, len(header))
	for i, h := range header {
		doc[h] = fields[i]
	}
	ev := &event.Event{}
	if err := fillGeneric(doc, ev, timeField); err != nil {
		return nil, err
	}
	ev.Source = "csv"
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("CSV row: %w", err)
	}
	ev.Doc = b
	return ev, nil
}

// sniffCSV recognizes a header line of at least three plain column names
// followed by rows with as many fields.
func sniffCSV(head []byte) bool {
	lines := strings.SplitN(string(head), "\n", 4)
	if len(lines) < 2 {
		return false
	}
	h, err := splitCSV([]byte(lines[0]))
	if err != nil || len(h) < 3 {
		return false
	}
	for _, name := range h {
		if name == "" || len(name) > 64 || strings.ContainsAny(name, "{}[]<>:=") {
			return false
		}
	}
	row, err := splitCSV([]byte(lines[1]))
	return err == nil && len(row) == len(h)
}
