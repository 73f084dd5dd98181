package parse

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// sniffSize is how much of an input Detect looks at.
const sniffSize = 64 << 10

// A sniffer recognizes a line-oriented format from the start of an input.
type sniffer struct {
	format string
	match  func(head []byte) bool
}

// sniffers are tried in order; more specific formats come first.
var sniffers []sniffer

func registerSniffer(format string, match func(head []byte) bool) {
	sniffers = append(sniffers, sniffer{format, match})
}

// fallbackSniffers are tried after every sniffer in sniffers, whatever
// the order of registration (init order follows file names).
var fallbackSniffers []sniffer

// registerFallbackSniffer registers the sniffer of a catch-all format,
// such as syslog, whose loose shape would otherwise claim inputs of more
// specific formats.
func registerFallbackSniffer(format string, match func(head []byte) bool) {
	fallbackSniffers = append(fallbackSniffers, sniffer{format, match})
}

// Detect names the format of an input from its first bytes (decompressed),
// or returns "" when it recognizes none. JSON inputs are classified by the
// keys of their first record; every later record is checked again as it
// is parsed, so a mixed file still imports whole.
func Detect(head []byte) string {
	b := trimSpace(head)
	if len(b) == 0 {
		return ""
	}
	if b[0] == '{' || b[0] == '[' {
		if f := detectJSON(b); f != "" {
			return f
		}
	}
	if !utf8.Valid(b[:validPrefix(b)]) || bytes.IndexByte(b, 0) >= 0 {
		return "" // binary
	}
	for _, s := range sniffers {
		if s.match(head) {
			return s.format
		}
	}
	for _, s := range fallbackSniffers {
		if s.match(head) {
			return s.format
		}
	}
	return ""
}

// validPrefix cuts the last few bytes, which may split a rune.
func validPrefix(b []byte) int {
	if len(b) > utf8.UTFMax {
		return len(b) - utf8.UTFMax
	}
	return len(b)
}

// detectJSON classifies the first record of a JSON input.
func detectJSON(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	var first json.RawMessage
	if b[0] == '[' {
		dec.Token()
		if !dec.More() {
			return "json"
		}
	}
	if err := dec.Decode(&first); err != nil {
		// The record is longer than the sniffed head, or broken: fall
		// back to the keys that can be seen.
		return detectJSONBytes(b)
	}
	if isWrapper(first) {
		d := json.NewDecoder(bytes.NewReader(first))
		d.Token()
		d.Token()
		d.Token()
		if !d.More() {
			return "json"
		}
		if err := d.Decode(&first); err != nil {
			return detectJSONBytes(b)
		}
	}
	if first[0] != '{' {
		return "json"
	}
	f, _ := classifyJSON(first)
	return f
}

// detectJSONBytes guesses a JSON format from keys in a partial document.
func detectJSONBytes(b []byte) string {
	has := func(s string) bool { return bytes.Contains(b, []byte(s)) }
	switch {
	case has(`"eventSource"`) && has(`"eventName"`), has(`"CloudTrailEvent"`):
		return "aws.cloudtrail"
	case has(`"protoPayload"`):
		return "gcp.audit"
	case has(`"operationName"`):
		if has(`"SignInLogs"`) || has(`"AuditLogs"`) {
			if _, ok := jsonParsers["azure.signin"]; ok {
				return "azure.signin"
			}
		}
		if _, ok := jsonParsers["azure.activity"]; ok {
			return "azure.activity"
		}
	}
	return "json"
}
