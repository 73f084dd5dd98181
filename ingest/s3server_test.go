package ingest

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"github.com/vigilsec/vigil/awstest"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// s3Server is an S3-compatible server for tests, on 127.0.0.1. It serves
// ListObjectsV2 and GetObject for one bucket, addressed path-style, and
// checks every request as the S3 API reference documents it: the SigV4
// Authorization header is recomputed from the request with the secret key
// (canonical request, string to sign, derived key; "Authenticating
// Requests (AWS Signature Version 4)"), x-amz-date and
// x-amz-content-sha256 must be present and signed, and the query
// parameters must be those the operation defines. A request it does not
// understand fails the test; one whose signature does not match is
// answered 403 SignatureDoesNotMatch, as S3 answers it, and fails the
// test unless the test expects it.
type s3Server struct {
	t                  *testing.T
	URL                string
	bucket, region     string
	keyID, secret      string
	pageSize           int // keys and prefixes per ListObjectsV2 page, at most
	allowBadSignatures bool

	mu       sync.Mutex
	objects  map[string]*s3TestObject
	requests []string            // "LIST prefix start-after", "GET key"
	fail     map[string]int      // request → 500s still to answer
	cut      map[string]int      // key → GETs still to cut short
	rejected int                 // requests answered 403
	handled  func(*http.Request) // called after each request, outside mu
}

type s3TestObject struct {
	data     []byte
	modified time.Time
	etag     string // quoted
}

func newS3Server(t *testing.T, bucket, region, keyID, secret string) *s3Server {
	s := &s3Server{
		t: t, bucket: bucket, region: region, keyID: keyID, secret: secret, pageSize: 1000,
		objects: make(map[string]*s3TestObject),
		fail:    make(map[string]int),
		cut:     make(map[string]int),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.rejected > 0 && !s.allowBadSignatures {
			t.Errorf("s3 server: %d requests had a bad signature", s.rejected)
		}
	})
	s.URL = srv.URL
	return s
}

// put stores an object, last modified at modified.
func (s *s3Server) put(key string, data []byte, modified time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := md5.Sum(data)
	s.objects[key] = &s3TestObject{data: data, modified: modified.UTC().Truncate(time.Millisecond), etag: `"` + hex.EncodeToString(sum[:]) + `"`}
}

// failNext makes the next n requests for what (as logged in requests)
// fail with 500 InternalError.
func (s *s3Server) failNext(what string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[what] = n
}

// cutNext makes the next n GETs of key end half-way through the body,
// as a reset connection does.
func (s *s3Server) cutNext(key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut[key] = n
}

// takeRequests returns the requests served since the last call.
func (s *s3Server) takeRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

func (s *s3Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	done := s.handle(w, r)
	s.mu.Unlock()
	if done && s.handled != nil {
		s.handled(r)
	}
}

// handle serves r with s.mu held, and reports whether it read anything.
func (s *s3Server) handle(w http.ResponseWriter, r *http.Request) bool {
	t := s.t
	if r.Method != http.MethodGet {
		t.Errorf("s3 server: unexpected %s %s", r.Method, r.URL)
		s3Error(w, http.StatusNotImplemented, "NotImplemented", "only GET is served here")
		return false
	}
	if err := s.checkSignature(r); err != nil {
		s.rejected++
		if !s.allowBadSignatures {
			t.Errorf("s3 server: %s %s: %v", r.Method, r.URL, err)
		}
		s3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
		return false
	}
	bucketPath := "/" + s.bucket
	q := r.URL.Query()
	switch {
	case r.URL.Path == bucketPath || r.URL.Path == bucketPath+"/":
		if q.Get("list-type") != "2" {
			t.Errorf("s3 server: a bucket GET that is not ListObjectsV2: %s", r.URL)
			s3Error(w, http.StatusNotImplemented, "NotImplemented", "only ListObjectsV2 is served here")
			return false
		}
		if !s.knownParams(q, "list-type", "prefix", "delimiter", "continuation-token", "start-after", "max-keys", "encoding-type", "fetch-owner") {
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "unknown parameter")
			return false
		}
		what := "LIST " + q.Get("prefix")
		s.requests = append(s.requests, what+" "+q.Get("start-after"))
		if s.fail[what] > 0 {
			s.fail[what]--
			s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return false
		}
		s.list(w, q)
		return true
	case strings.HasPrefix(r.URL.Path, bucketPath+"/"):
		// The GetObject URI is /{Bucket}/{Key+}?x-id=GetObject in the S3
		// API model; x-id is the only parameter the SDK adds.
		if !s.knownParams(q, "x-id") || q.Get("x-id") != "GetObject" {
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "unknown parameter")
			return false
		}
		key := strings.TrimPrefix(r.URL.Path, bucketPath+"/")
		what := "GET " + key
		s.requests = append(s.requests, what)
		if s.fail[what] > 0 {
			s.fail[what]--
			s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return false
		}
		s.get(w, r, key)
		return true
	default:
		t.Errorf("s3 server: unexpected path %s (bucket %s, path-style)", r.URL.Path, s.bucket)
		s3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return false
	}
}

func (s *s3Server) knownParams(q url.Values, known ...string) bool {
	for k := range q {
		if !slices.Contains(known, k) {
			s.t.Errorf("s3 server: unknown query parameter %q", k)
			return false
		}
	}
	return true
}

// The ListObjectsV2 response, as the API reference shows it.
type s3ListResult struct {
	XMLName               xml.Name        `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string          `xml:"Name"`
	Prefix                string          `xml:"Prefix"`
	Delimiter             string          `xml:"Delimiter,omitempty"`
	StartAfter            string          `xml:"StartAfter,omitempty"`
	ContinuationToken     string          `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string          `xml:"NextContinuationToken,omitempty"`
	KeyCount              int             `xml:"KeyCount"`
	MaxKeys               int             `xml:"MaxKeys"`
	IsTruncated           bool            `xml:"IsTruncated"`
	Contents              []s3ListContent `xml:"Contents"`
	CommonPrefixes        []s3ListPrefix  `xml:"CommonPrefixes"`
}

type s3ListContent struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type s3ListPrefix struct {
	Prefix string `xml:"Prefix"`
}

// list serves ListObjectsV2: keys in UTF-8 binary order after start-after
// or the continuation token, those with the delimiter after the prefix
// rolled up into common prefixes, each counting once towards max-keys.
func (s *s3Server) list(w http.ResponseWriter, q url.Values) {
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "max-keys")
			return
		}
		maxKeys = n
	}
	after := q.Get("start-after")
	afterPrefix := "" // the continuation ends on a common prefix: skip its keys
	if tok := q.Get("continuation-token"); tok != "" {
		b, err := base64.StdEncoding.DecodeString(tok)
		if err != nil {
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
			return
		}
		kind, last, _ := strings.Cut(string(b), ":")
		after = max(after, last)
		if kind == "p" {
			afterPrefix = last
		}
	}
	keys := make([]string, 0, len(s.objects))
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) && k > after && (afterPrefix == "" || !strings.HasPrefix(k, afterPrefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	res := s3ListResult{
		Name: s.bucket, Prefix: prefix, Delimiter: delim, StartAfter: q.Get("start-after"),
		ContinuationToken: q.Get("continuation-token"), MaxKeys: maxKeys,
	}
	limit := min(maxKeys, s.pageSize)
	last, lastKind := "", ""
	for _, k := range keys {
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if cp == last {
					continue
				}
				if res.KeyCount == limit {
					res.IsTruncated = true
					break
				}
				res.CommonPrefixes = append(res.CommonPrefixes, s3ListPrefix{cp})
				res.KeyCount++
				last, lastKind = cp, "p"
				continue
			}
		}
		if res.KeyCount == limit {
			res.IsTruncated = true
			break
		}
		o := s.objects[k]
		res.Contents = append(res.Contents, s3ListContent{
			Key: k, LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"),
			ETag: o.etag, Size: len(o.data), StorageClass: "STANDARD",
		})
		res.KeyCount++
		last, lastKind = k, "k"
	}
	if res.IsTruncated {
		res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(lastKind + ":" + last))
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write([]byte(xml.Header))
	if err := xml.NewEncoder(w).Encode(res); err != nil {
		s.t.Errorf("s3 server: encoding a listing: %v", err)
	}
}

// get serves GetObject, honouring If-Match, and returning the object's
// CRC-32 when the client asks for checksums (x-amz-checksum-mode:
// ENABLED), so that the SDK checks the body.
func (s *s3Server) get(w http.ResponseWriter, r *http.Request, key string) {
	o := s.objects[key]
	if o == nil {
		s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != o.etag {
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(o.data)))
	h.Set("ETag", o.etag)
	h.Set("Last-Modified", o.modified.Format(http.TimeFormat))
	if r.Header.Get("X-Amz-Checksum-Mode") == "ENABLED" {
		sum := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(o.data))
		h.Set("X-Amz-Checksum-Crc32", base64.StdEncoding.EncodeToString(sum))
		h.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	body := o.data
	if s.cut[key] > 0 {
		s.cut[key]--
		body = body[:len(body)/2] // the server closes the connection short of Content-Length
	}
	w.Write(body)
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s<Error><Code>%s</Code><Message>", xml.Header, code)
	xml.EscapeText(w, []byte(msg))
	fmt.Fprint(w, "</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>")
}

// checkSignature checks r's SigV4 signature, computing it as
// docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
// describes; S3 also requires x-amz-content-sha256, signed.
func (s *s3Server) checkSignature(r *http.Request) error {
	if r.Header.Get("X-Amz-Content-Sha256") == "" {
		return fmt.Errorf("no x-amz-content-sha256")
	}
	return awstest.Credentials{KeyID: s.keyID, Secret: s.secret, Region: s.region, Service: "s3"}.Check(r, nil)
}
