// Package awstest helps test code that calls AWS: it checks a request's
// Signature Version 4 by computing it again from the request, as AWS
// documents it (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html),
// so that a local server stands in for an AWS service only for requests
// AWS would accept.
package awstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Credentials are the access key a server accepts, for a service in a
// region.
type Credentials struct {
	KeyID, Secret   string
	Region, Service string
	// SessionToken is the token that comes with temporary credentials
	// (those of an assumed role), in X-Amz-Security-Token; empty for a
	// long-term key, with which AWS takes no token.
	SessionToken string
}

// Check checks r's SigV4 signature (the Authorization header form),
// given its body. It returns why it is wrong, or nil.
func (c Credentials) Check(r *http.Request, body []byte) error {
	const algorithm = "AWS4-HMAC-SHA256"
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), algorithm+" ")
	if !ok {
		return fmt.Errorf("authorization %q is not %s", r.Header.Get("Authorization"), algorithm)
	}
	fields := map[string]string{}
	for f := range strings.SplitSeq(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	amzDate := r.Header.Get("X-Amz-Date")
	switch {
	case len(cred) != 5:
		return fmt.Errorf("credential %q is not key/date/region/service/aws4_request", fields["Credential"])
	case cred[0] != c.KeyID:
		return fmt.Errorf("access key %q, want %q", cred[0], c.KeyID)
	case cred[2] != c.Region || cred[3] != c.Service || cred[4] != "aws4_request":
		return fmt.Errorf("scope %s, want …/%s/%s/aws4_request", fields["Credential"], c.Region, c.Service)
	case len(amzDate) != 16 || cred[1] != amzDate[:8]:
		return fmt.Errorf("x-amz-date %q does not match the credential's date %s", amzDate, cred[1])
	}
	when, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fmt.Errorf("x-amz-date: %w", err)
	}
	if d := time.Since(when); d > 15*time.Minute || d < -15*time.Minute {
		return fmt.Errorf("x-amz-date %s is more than 15 minutes off (RequestTimeTooSkewed)", amzDate)
	}
	// The payload hash is the body's, or what x-amz-content-sha256 says
	// it is: the body's, or UNSIGNED-PAYLOAD.
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		if h != payload && h != "UNSIGNED-PAYLOAD" {
			return fmt.Errorf("x-amz-content-sha256 %q is not the body's", h)
		}
		payload = h
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.IsSorted(signed) {
		return fmt.Errorf("signed headers %q are not sorted", fields["SignedHeaders"])
	}
	for _, h := range []string{"host", "x-amz-date"} {
		if !slices.Contains(signed, h) {
			return fmt.Errorf("%s is not signed", h)
		}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-amz-") && !slices.Contains(signed, l) {
			return fmt.Errorf("%s is sent but not signed", l)
		}
	}
	// Temporary credentials are only good with their session token
	// (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#temporary-security-credentials);
	// the loop above has made sure it is signed.
	switch tok := r.Header.Get("X-Amz-Security-Token"); {
	case tok == c.SessionToken:
	case c.SessionToken == "":
		return fmt.Errorf("x-amz-security-token is sent with %s, a key without one", c.KeyID)
	case tok == "":
		return fmt.Errorf("no x-amz-security-token with %s, temporary credentials", c.KeyID)
	default:
		return fmt.Errorf("x-amz-security-token %q is not the session token of %s", tok, c.KeyID)
	}

	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(escape(r.URL.Path, false) + "\n")
	var params []string
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			params = append(params, escape(k, true)+"="+escape(v, true))
		}
	}
	slices.Sort(params)
	canon.WriteString(strings.Join(params, "&") + "\n")
	for _, h := range signed {
		v := strings.Join(r.Header.Values(h), ",")
		if h == "host" {
			v = r.Host
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + payload)

	scope := strings.Join(cred[1:], "/")
	creq := sha256.Sum256([]byte(canon.String()))
	toSign := algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	key := []byte("AWS4" + c.Secret)
	for _, part := range cred[1:] {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return fmt.Errorf("signature %s, want %s; canonical request:\n%s", fields["Signature"], want, canon.String())
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// escape is SigV4's UriEncode: every byte but the unreserved characters
// as %XX in upper case, and the slash too unless it separates path
// segments.
func escape(s string, slash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && !slash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
