package playbook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// An APIError is a cloud or web API's refusal: its HTTP status and, when
// the API says, its error code and message.
type APIError struct {
	Service string // "gcp.iam", "graph", "http"
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: %d %s", e.Service, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// The ways a step's attempt fails, which decide whether it is tried again.
const (
	// failRefused: the API refused the call for good (denied, not found,
	// invalid): trying again does the same.
	failRefused = "refused"
	// failThrottled: the API turned the call away without acting
	// (throttled, unavailable): any action may be tried again.
	failThrottled = "throttled"
	// failUnknown: the call may or may not have acted (a timeout, a
	// dropped connection, a server error): only an idempotent action may
	// be tried again.
	failUnknown = "unknown"
)

// throttleCodes are the error codes with which AWS, Google and Microsoft
// turn a call away before acting on it.
var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "RequestThrottled": true, "RequestThrottledException": true,
	"SlowDown": true, "ServiceUnavailable": true, "RATE_LIMIT_EXCEEDED": true, "RESOURCE_EXHAUSTED": true,
	"UNAVAILABLE": true, "TooManyRequests": true, "activityLimitReached": true,
}

// failure says how an attempt failed.
func failure(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return statusFailure(ae.Status, ae.Code)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		status := 0
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		return statusFailure(status, api.ErrorCode())
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return failUnknown
	case errors.Is(err, context.Canceled):
		return failRefused // vigil is stopping: the run is resumed, not retried
	}
	return failRefused
}

func statusFailure(status int, code string) string {
	switch {
	case throttleCodes[code], status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return failThrottled
	case status >= 500, status == http.StatusRequestTimeout:
		return failUnknown
	}
	return failRefused
}
