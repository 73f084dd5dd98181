package playbook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// HTTP calls a SOAR's or a ticketing system's web hook: the http action.
// Its inputs: url; method (default POST); body (default empty);
// content_type (default application/json); auth, the name of one of
// Secrets, sent as the Authorization header, so that no credential is
// written in a playbook or recorded with its inputs.
//
// Its outputs are the answer's status and body (the first 4 KiB), and
// when the body is a JSON object, its top-level strings and numbers, so
// that a later step can name the ticket it opened:
// {{ .Steps.ticket.id }}.
type HTTP struct {
	Client  *http.Client
	Secrets map[string]string
}

// Run makes the call.
func (h *HTTP) Run(ctx context.Context, action string, in map[string]string) (map[string]string, error) {
	u, err := url.Parse(in["url"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q is not an http or https address", in["url"])
	}
	method := strings.ToUpper(cmp.Or(in["method"], http.MethodPost))
	if !slices.Contains([]string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet}, method) {
		return nil, fmt.Errorf("method %q is not POST, PUT, PATCH or GET", method)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(in["body"]))
	if err != nil {
		return nil, err
	}
	if in["body"] != "" {
		req.Header.Set("Content-Type", cmp.Or(in["content_type"], "application/json"))
	}
	req.Header.Set("User-Agent", "vigil-playbook")
	if name := in["auth"]; name != "" {
		v, ok := h.Secrets[name]
		if !ok {
			return nil, fmt.Errorf("no secret %q is configured (playbooks.http.secrets)", name)
		}
		req.Header.Set("Authorization", v)
	}
	client := cmp.Or(h.Client, http.DefaultClient)
	resp, err := client.Do(req)
	if err != nil {
		// The client's error repeats the address, query string and all,
		// which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, redacted(u), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return nil, &APIError{Service: "http", Status: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	}
	out := map[string]string{"status": fmt.Sprint(resp.StatusCode), "body": string(body)}
	var obj map[string]any
	if json.Unmarshal(body, &obj) == nil {
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				out[k] = v
			case float64, bool:
				out[k] = fmt.Sprint(v)
			}
		}
	}
	return out, nil
}

// redacted is u without its query and user information, which may hold
// credentials, for errors.
func redacted(u *url.URL) string {
	c := *u
	c.User, c.RawQuery = nil, ""
	return c.String()
}
