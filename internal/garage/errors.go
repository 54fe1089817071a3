package garage

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors matched with errors.Is against the errors returned by Client
// methods. An *APIError (Garage answered) or a *TransportError (Garage could not
// be reached) carries the details.
var (
	// ErrNotFound matches Garage's 404 answers and NoSuch* codes
	// (NoSuchBucket, NoSuchAccessKey, ...).
	ErrNotFound = errors.New("garage: not found")
	// ErrConflict matches Garage's 409 answers (BucketAlreadyExists,
	// KeyAlreadyExists, BucketNotEmpty).
	ErrConflict = errors.New("garage: conflict")
	// ErrBucketNotEmpty matches the refusal to delete a bucket that still holds
	// objects (code BucketNotEmpty, 409). It also matches ErrConflict.
	ErrBucketNotEmpty = errors.New("garage: bucket not empty")
	// ErrBucketAlreadyExists matches CreateBucket's refusal of a global alias
	// already taken (code BucketAlreadyExists, 409). It also matches ErrConflict.
	ErrBucketAlreadyExists = errors.New("garage: bucket already exists")
	// ErrAccessDenied matches 403 answers, for instance a wrong admin token.
	ErrAccessDenied = errors.New("garage: access denied")
	// ErrInvalidRequest matches 400 answers (InvalidRequest, InvalidBucketName),
	// and requests this client refuses to send because they are malformed.
	ErrInvalidRequest = errors.New("garage: invalid request")
	// ErrUnavailable matches 503 answers (no quorum) and every *TransportError
	// (connection refused, timeout, reset): the call may succeed later.
	ErrUnavailable = errors.New("garage: unavailable")
)

// APIError is an error answer from Garage's admin API, decoded from its JSON
// body {"code","message","region","path"}. It matches the package's sentinels
// with errors.Is according to its Status and Code.
type APIError struct {
	// Operation is the admin API operation called, for instance "DeleteBucket".
	Operation string
	// Endpoint is the admin endpoint called (scheme://host[:port], no
	// credentials).
	Endpoint string
	// Status is the HTTP status code of the answer.
	Status int
	// Code is Garage's error code, for instance "NoSuchBucket". It is derived
	// from Status when the body carried none.
	Code string
	// Message is Garage's human-readable message.
	Message string
	// Region is the S3 region Garage reports in its error body.
	Region string
	// Path is the request path Garage reports in its error body, or the path
	// this client requested when the body did not say.
	Path string
}

// Error names the operation, the endpoint and Garage's answer.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "garage %s at %s: %d", e.Operation, e.Endpoint, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Is reports whether the error matches one of the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound || strings.HasPrefix(e.Code, "NoSuch")
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrBucketNotEmpty:
		return e.Code == "BucketNotEmpty"
	case ErrBucketAlreadyExists:
		return e.Code == "BucketAlreadyExists"
	case ErrAccessDenied:
		return e.Status == http.StatusForbidden
	case ErrInvalidRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// TransportError reports that Garage could not be asked or did not answer in
// time: connection refused, DNS failure, timeout, reset, or an answer that
// could not be read. It matches ErrUnavailable, and unwraps to the underlying
// error (so errors.Is(err, context.DeadlineExceeded) works for timeouts).
type TransportError struct {
	// Operation is the admin API operation called.
	Operation string
	// Endpoint is the admin endpoint called (no credentials).
	Endpoint string
	// Err is the underlying error.
	Err error
}

// Error names the operation and the endpoint; it never contains the token.
func (e *TransportError) Error() string {
	return fmt.Sprintf("garage %s at %s: transport: %v", e.Operation, e.Endpoint, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Is makes every TransportError match ErrUnavailable.
func (e *TransportError) Is(target error) bool { return target == ErrUnavailable }

// IsTransport reports whether err is (or wraps) a *TransportError, meaning
// Garage gave no answer at all, as opposed to an *APIError.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// codeForStatus gives a Garage-like code when an error body carried none.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "InvalidRequest"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	default:
		if status >= 500 {
			return "InternalError"
		}
		return ""
	}
}
