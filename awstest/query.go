package awstest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// A QueryAPI is an AWS service's Query API as its API reference
// documents it (IAM's, STS's, EC2's): a request is a POST to / of a
// form naming the Action and the API's Version, with the action's
// parameters, signed with SigV4; the answer is XML.
type QueryAPI struct {
	Version   string              // the API version requests name: "2010-05-08" for IAM
	Namespace string              // the responses' xmlns
	Actions   map[string][]string // the actions served, each with the parameters it requires
	// EC2 says the API answers as EC2 does: a requestId element first in
	// a response, and errors as <Response><Errors><Error>…; otherwise it
	// answers as IAM and STS do, with ResponseMetadata last and errors as
	// <ErrorResponse><Error>….
	EC2 bool
}

// A QueryError is a service's refusal of a call.
type QueryError struct {
	Status        int
	Code, Message string
}

// A QueryServer stands in for a service with a Query API, on loopback.
// It answers only the requests the service would take: signed with its
// Credentials, in the API's form, for one of its actions with the
// parameters the action requires. Others it refuses with the error the
// service gives. It keeps the form of every request it answers.
type QueryServer struct {
	*httptest.Server
	api    QueryAPI
	creds  Credentials
	answer func(action string, form url.Values) (string, *QueryError)

	mu     sync.Mutex
	calls  []url.Values
	refuse map[string]*QueryError
}

// NewQueryServer starts a QueryServer for api taking requests signed
// with creds, closed when t ends. answer gives what goes inside the
// action's response element (<AssumeRoleResult>…</AssumeRoleResult>, or
// EC2's <return>true</return>), or the error to answer with; nil
// answers every call with nothing more than the request id.
func NewQueryServer(t testing.TB, api QueryAPI, creds Credentials, answer func(action string, form url.Values) (string, *QueryError)) *QueryServer {
	s := &QueryServer{api: api, creds: creds, answer: answer, refuse: map[string]*QueryError{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Refuse makes the server answer calls of action with e from now on,
// once they have passed its checks; a nil e ends that.
func (s *QueryServer) Refuse(action string, e *QueryError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e == nil {
		delete(s.refuse, action)
		return
	}
	s.refuse[action] = e
}

// TakeCalls returns the forms of the requests answered since the last
// TakeCalls, refused ones included.
func (s *QueryServer) TakeCalls() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := s.calls
	s.calls = nil
	return calls
}

func (s *QueryServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, &QueryError{http.StatusBadRequest, "MalformedQueryString", err.Error()})
		return
	}
	if err := s.creds.Check(r, body); err != nil {
		if s.api.EC2 {
			s.fail(w, &QueryError{http.StatusUnauthorized, "AuthFailure", err.Error()})
		} else {
			s.fail(w, &QueryError{http.StatusForbidden, "SignatureDoesNotMatch", err.Error()})
		}
		return
	}
	form, err := url.ParseQuery(string(body))
	if r.Method != http.MethodPost || r.URL.Path != "/" || err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.fail(w, &QueryError{http.StatusBadRequest, "MalformedQueryString", fmt.Sprintf("%s %s is not a Query API request", r.Method, r.URL.Path)})
		return
	}
	if v := form.Get("Version"); v != s.api.Version {
		s.fail(w, &QueryError{http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("Version %q, want %s", v, s.api.Version)})
		return
	}
	action := form.Get("Action")
	required, ok := s.api.Actions[action]
	if !ok {
		s.fail(w, &QueryError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %q is not valid for this web service.", action)})
		return
	}
	for _, p := range required {
		if form.Get(p) == "" {
			s.fail(w, &QueryError{http.StatusBadRequest, "MissingParameter", fmt.Sprintf("The request must contain the parameter %s", p)})
			return
		}
	}

	s.mu.Lock()
	s.calls = append(s.calls, form)
	refused := s.refuse[action]
	s.mu.Unlock()
	if refused != nil {
		s.fail(w, refused)
		return
	}
	var result string
	if s.answer != nil {
		if result, refused = s.answer(action, form); refused != nil {
			s.fail(w, refused)
			return
		}
	}
	const requestID = "59dbff89-35bd-4eac-99ed-be587EXAMPLE"
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if s.api.EC2 {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%sResponse xmlns="%s"><requestId>%s</requestId>%s</%[1]sResponse>`, action, s.api.Namespace, requestID, result)
		return
	}
	fmt.Fprintf(w, `<%sResponse xmlns="%s">%s<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%[1]sResponse>`, action, s.api.Namespace, result, requestID)
}

// fail answers with e in the API's error form.
func (s *QueryServer) fail(w http.ResponseWriter, e *QueryError) {
	var msg strings.Builder
	xml.EscapeText(&msg, []byte(e.Message))
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	const requestID = "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"
	if s.api.EC2 {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`, e.Code, msg.String(), requestID)
		return
	}
	kind := "Sender"
	if e.Status >= 500 {
		kind = "Receiver"
	}
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, s.api.Namespace, kind, e.Code, msg.String(), requestID)
}
