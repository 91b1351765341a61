// testenv-registry: an OCI registry for scripts/testenv, with the OCI 1.1 referrers API and,
// optionally, TLS and authentication the way real registries ask for it.
//
//	testenv-registry -addr 127.0.0.1:PORT [-tls-cert FILE -tls-key FILE]
//	                 [-auth none|basic|bearer -user NAME -password SECRET]
//
// The registry is go-containerregistry's pkg/registry (in memory, referrers API on), with two fixes to
// follow the OCI distribution spec 1.1 where it does not (yet):
//
//   - GET /v2/<name>/referrers/<digest> lists as a referrer's artifactType the manifest's own
//     artifactType when it has one (pkg/registry gives its config's media type, which for cosign v3's
//     bundles is the empty config's application/vnd.oci.empty.v1+json), applies the ?artifactType=
//     filter (answering OCI-Filters-Applied: artifactType), and lists the referrers in digest order.
//   - PUT of a manifest with a subject answers OCI-Subject: <subject digest>.
//
// In front of it, with -auth:
//
//	basic   every /v2/ request needs HTTP Basic -user:-password, else 401 with
//	        `WWW-Authenticate: Basic realm="testenv"`.
//	bearer  the Docker token flow: a /v2/ request without a valid token gets 401 with
//	        `WWW-Authenticate: Bearer realm="<scheme>://<addr>/token",service="testenv",scope="repository:<name>:pull"`
//	        (`pull,push` for writes, no scope on /v2/ itself). GET or POST /token with HTTP Basic
//	        -user:-password (or a POST form with username and password) returns
//	        {"token": T, "access_token": T, "expires_in": 3600, "issued_at": ...}; /v2/ requests
//	        then need `Authorization: Bearer T`. Any issued token grants every scope.
//
// It stops cleanly on SIGTERM or SIGINT.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

const (
	service  = "testenv"
	tokenTTL = time.Hour
)

type server struct {
	registry http.Handler
	auth     string
	user     string
	password string
	realm    string

	mu     sync.Mutex
	tokens map[string]time.Time // issued token -> expiry
}

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on")
	tlsCert := flag.String("tls-cert", "", "TLS certificate (PEM); serve HTTPS when given with -tls-key")
	tlsKey := flag.String("tls-key", "", "TLS private key (PEM)")
	auth := flag.String("auth", "none", "authentication: none, basic or bearer")
	user := flag.String("user", "", "user name for basic and bearer")
	password := flag.String("password", "", "password for basic and bearer")
	flag.Parse()

	useTLS := *tlsCert != "" || *tlsKey != ""
	if useTLS && (*tlsCert == "" || *tlsKey == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}
	switch *auth {
	case "none":
	case "basic", "bearer":
		if *user == "" || *password == "" {
			log.Fatalf("-auth %s needs -user and -password", *auth)
		}
	default:
		log.Fatalf("-auth must be none, basic or bearer, not %q", *auth)
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}

	logger := log.New(os.Stderr, "", log.LstdFlags)
	s := &server{
		registry: registry.New(registry.WithReferrersSupport(true), registry.Logger(logger)),
		auth:     *auth,
		user:     *user,
		password: *password,
		realm:    scheme + "://" + *addr + "/token",
		tokens:   map[string]time.Time{},
	}
	srv := &http.Server{Addr: *addr, Handler: s, ReadHeaderTimeout: 30 * time.Second}

	done := make(chan struct{})
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		close(done)
	}()

	logger.Printf("testenv-registry: %s://%s auth=%s", scheme, *addr, *auth)
	var err error
	if useTLS {
		err = srv.ListenAndServeTLS(*tlsCert, *tlsKey)
	} else {
		err = srv.ListenAndServe()
	}
	if !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-done
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" && s.auth == "bearer" {
		s.issueToken(w, r)
		return
	}
	switch s.auth {
	case "basic":
		if !s.basicOK(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+service+`"`)
			unauthorized(w, "basic authentication required")
			return
		}
	case "bearer":
		if !s.bearerOK(r) {
			challenge := fmt.Sprintf(`Bearer realm="%s",service="%s"`, s.realm, service)
			if repo, _ := route(r.URL.Path); repo != "" {
				actions := "pull"
				if r.Method != http.MethodGet && r.Method != http.MethodHead {
					actions = "pull,push"
				}
				challenge += fmt.Sprintf(`,scope="repository:%s:%s"`, repo, actions)
			}
			w.Header().Set("WWW-Authenticate", challenge)
			unauthorized(w, "bearer token required")
			return
		}
	}
	repo, kind := route(r.URL.Path)
	switch {
	case kind == "referrers" && r.Method == http.MethodGet:
		s.referrers(w, r, repo)
	case kind == "manifests" && r.Method == http.MethodPut:
		s.putManifest(w, r)
	default:
		s.registry.ServeHTTP(w, r)
	}
}

// descriptor is an OCI descriptor, kept whole (map) so that nothing is lost in the rewrite.
type descriptor = map[string]any

// referrers answers pkg/registry's referrers list with each artifactType as the spec says, filtered.
func (s *server) referrers(w http.ResponseWriter, r *http.Request, repo string) {
	inner := httptest.NewRecorder()
	s.registry.ServeHTTP(inner, r)
	var index struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
	if inner.Code != http.StatusOK || json.Unmarshal(inner.Body.Bytes(), &index) != nil {
		copyResponse(w, inner)
		return
	}
	want := r.URL.Query().Get("artifactType")
	kept := []descriptor{}
	for _, d := range index.Manifests {
		digest, _ := d["digest"].(string)
		get := httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/manifests/"+digest, nil)
		manifest := httptest.NewRecorder()
		s.registry.ServeHTTP(manifest, get)
		var own struct {
			ArtifactType string `json:"artifactType"`
		}
		if manifest.Code == http.StatusOK && json.Unmarshal(manifest.Body.Bytes(), &own) == nil && own.ArtifactType != "" {
			d["artifactType"] = own.ArtifactType
		}
		if want == "" || d["artifactType"] == want {
			kept = append(kept, d)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return fmt.Sprint(kept[i]["digest"]) < fmt.Sprint(kept[j]["digest"]) })
	index.Manifests = kept
	body, _ := json.Marshal(index)
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", index.MediaType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// putManifest stores the manifest and, when it has a subject, answers OCI-Subject as the spec says.
func (s *server) putManifest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var manifest struct {
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(body, &manifest) == nil && manifest.Subject != nil && manifest.Subject.Digest != "" {
		w.Header().Set("OCI-Subject", manifest.Subject.Digest)
	}
	s.registry.ServeHTTP(w, r)
}

func copyResponse(w http.ResponseWriter, from *httptest.ResponseRecorder) {
	for key, values := range from.Header() {
		w.Header()[key] = values
	}
	w.WriteHeader(from.Code)
	_, _ = w.Write(from.Body.Bytes())
}

func (s *server) basicOK(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	return ok && equal(user, s.user) && equal(password, s.password)
}

func (s *server) bearerOK(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	expiry, ok := s.tokens[token]
	return ok && time.Now().Before(expiry)
}

func (s *server) issueToken(w http.ResponseWriter, r *http.Request) {
	ok := s.basicOK(r)
	if !ok && r.Method == http.MethodPost && r.ParseForm() == nil {
		ok = equal(r.PostForm.Get("username"), s.user) && equal(r.PostForm.Get("password"), s.password)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+service+`"`)
		unauthorized(w, "user name and password required")
		return
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	token := hex.EncodeToString(raw)
	now := time.Now()
	s.mu.Lock()
	for t, expiry := range s.tokens {
		if now.After(expiry) {
			delete(s.tokens, t)
		}
	}
	s.tokens[token] = now.Add(tokenTTL)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   int(tokenTTL.Seconds()),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// route splits /v2/<name>/<kind>/... into <name> and <kind> (manifests, blobs, tags or referrers);
// both are "" for other paths.
func route(path string) (repo, kind string) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	for i := len(parts) - 2; i > 0; i-- {
		switch parts[i] {
		case "manifests", "blobs", "tags", "referrers":
			return strings.Join(parts[:i], "/"), parts[i]
		}
	}
	return "", ""
}

func unauthorized(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": message}},
	})
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
