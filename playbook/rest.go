package playbook

import (
	"encoding/json"
	"io"
	"net/http"
)

// callREST sends a request to a REST API (Google's, Microsoft Graph) and
// reads its answer: nil for a 2xx, whose body is drained so that the
// connection is reused; otherwise an *APIError of service, from the
// error body both APIs write. A 401 calls expired: the token was revoked
// or expired early, and the next call must get another.
func callREST(client *http.Client, req *http.Request, service string, expired func()) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	if resp.StatusCode == http.StatusUnauthorized {
		expired()
	}
	// Google: {"error":{"code":403,"message":"…","status":"PERMISSION_DENIED"}}
	// (cloud.google.com/apis/design/errors#http_mapping); Graph:
	// {"error":{"code":"Authorization_RequestDenied","message":"…"}}
	// (learn.microsoft.com/en-us/graph/errors). A body that is neither
	// (a proxy's page) leaves the HTTP status alone to say what happened;
	// a 429's Retry-After is left to the status, which marks it throttled.
	var body struct {
		Error struct {
			Code    json.RawMessage `json:"code"`
			Status  string          `json:"status"`
			Message string          `json:"message"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	code := body.Error.Status
	if code == "" {
		_ = json.Unmarshal(body.Error.Code, &code) // Graph's is a string, Google's a number
	}
	return &APIError{Service: service, Status: resp.StatusCode, Code: code, Message: body.Error.Message}
}
