package awstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sign signs a Query API request to u with the SDK's signer, as an AWS
// client does.
func sign(t *testing.T, u string, form url.Values, creds aws.Credentials, region, service string) *http.Request {
	t.Helper()
	body := form.Encode()
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, region, time.Now()); err != nil {
		t.Fatal(err)
	}
	// As a server sees it: the signer signed the length.
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return r
}

// TestCheckSessionToken: temporary credentials are taken only with
// their session token, a long-term key only without one.
func TestCheckSessionToken(t *testing.T) {
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}
	long := Credentials{KeyID: "AKIDTEST", Secret: "s", Region: "us-east-1", Service: "sts"}
	temp := long
	temp.KeyID, temp.SessionToken = "ASIATEST", "token-1"
	for _, tc := range []struct {
		server Credentials
		token  string // the client's
		ok     bool
	}{
		{long, "", true},
		{long, "token-1", false},
		{temp, "token-1", true},
		{temp, "", false},
		{temp, "token-2", false},
	} {
		r := sign(t, "http://127.0.0.1/", form, aws.Credentials{AccessKeyID: tc.server.KeyID, SecretAccessKey: "s", SessionToken: tc.token}, "us-east-1", "sts")
		err := tc.server.Check(r, []byte(form.Encode()))
		if (err == nil) != tc.ok {
			t.Errorf("server token %q, client token %q: %v", tc.server.SessionToken, tc.token, err)
		}
	}
}

// TestQueryServer: the server answers a well-formed call, and refuses in
// the API's error form a call AWS would refuse.
func TestQueryServer(t *testing.T) {
	creds := Credentials{KeyID: "AKIDTEST", Secret: "s", Region: "us-east-1", Service: "ec2"}
	api := QueryAPI{Version: "2016-11-15", Namespace: "http://ec2.amazonaws.com/doc/2016-11-15/", EC2: true,
		Actions: map[string][]string{"CreateTags": {"ResourceId.1", "Tag.1.Key"}}}
	s := NewQueryServer(t, api, creds, func(string, url.Values) (string, *QueryError) { return "<return>true</return>", nil })
	key := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "s"}
	ok := url.Values{"Action": {"CreateTags"}, "Version": {"2016-11-15"}, "ResourceId.1": {"i-1"}, "Tag.1.Key": {"k"}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		key    aws.Credentials
		status int
		want   string
	}{
		{"ok", ok, key, 200, "<return>true</return>"},
		{"bad signature", ok, aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "x"}, 401, "<Code>AuthFailure</Code>"},
		{"old version", url.Values{"Action": {"CreateTags"}, "Version": {"2014-10-01"}, "ResourceId.1": {"i-1"}, "Tag.1.Key": {"k"}}, key, 400, "<Code>InvalidParameterValue</Code>"},
		{"unknown action", url.Values{"Action": {"DeleteTags"}, "Version": {"2016-11-15"}}, key, 400, "<Code>InvalidAction</Code>"},
		{"missing parameter", url.Values{"Action": {"CreateTags"}, "Version": {"2016-11-15"}, "ResourceId.1": {"i-1"}}, key, 400, "<Code>MissingParameter</Code>"},
	} {
		resp, err := http.DefaultClient.Do(sign(t, s.URL+"/", tc.form, tc.key, "us-east-1", "ec2"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	if calls := s.TakeCalls(); len(calls) != 1 || calls[0].Get("ResourceId.1") != "i-1" {
		t.Errorf("calls %v, want the one that passed", calls)
	}
}
