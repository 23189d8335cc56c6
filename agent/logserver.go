package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// DefaultLogBindAddress is where an agent's log server listens by default.
const DefaultLogBindAddress = ":10251"

// LogServerConfig configures an agent's log server.
type LogServerConfig struct {
	// BindAddress is host:port to listen on (port 0 picks a free one).
	BindAddress string
	// AdvertiseHost is the host in the endpoint written into Tasks; it must
	// be reachable from where `agora logs` runs. Default: the bind host, or
	// this machine's hostname when the bind host is unspecified.
	AdvertiseHost string
	// CertFile and KeyFile are a serving certificate to use. Without them a
	// self-signed one is generated and kept in CertDir (in memory only if
	// CertDir is empty, so every start has a new fingerprint).
	CertFile, KeyFile, CertDir string
	// Sandbox maps a task ID (the Task's UID) to its sandbox directory,
	// e.g. runtime.Runtime.SandboxDir.
	Sandbox func(taskID string) (string, error)
	// Kube reviews callers' tokens (TokenReview) and rights
	// (SubjectAccessReview).
	Kube kubernetes.Interface
	// PollInterval of a followed file (default 500ms).
	PollInterval time.Duration
	// Log receives the server's logs (default: discarded).
	Log logr.Logger
}

// LogServer serves the stdout and stderr of an agent's tasks over HTTPS, as
// kubelet serves pod logs:
//
//	GET /logs/<namespace>/<task>/<stdout|stderr>?follow=1&tail=N
//
// The caller sends a bearer token; the server authenticates it with a
// TokenReview and authorizes `get` on `tasks/log` in the task's namespace
// with a SubjectAccessReview. Only Tasks bound to this agent are served,
// and their sandbox is found from the Task's UID, never from the request.
type LogServer struct {
	cfg      LogServerConfig
	ln       net.Listener
	cert     tls.Certificate
	endpoint string
	pin      string
	agent    atomic.Pointer[Agent]
}

// NewLogServer listens on cfg.BindAddress and loads or makes the serving
// certificate; Serve serves. Endpoint and CertSHA256 go into the agent's
// Config (LogEndpoint, LogCertSHA256).
func NewLogServer(cfg LogServerConfig) (*LogServer, error) {
	if cfg.Sandbox == nil || cfg.Kube == nil {
		return nil, errors.New("log server: Sandbox and Kube are required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	bindHost, _, err := net.SplitHostPort(cfg.BindAddress)
	if err != nil {
		return nil, fmt.Errorf("log server: bind address %q: %w", cfg.BindAddress, err)
	}
	host := cfg.AdvertiseHost
	if host == "" {
		host = bindHost
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			if host, err = os.Hostname(); err != nil {
				return nil, fmt.Errorf("log server: no advertise host given and no hostname: %w", err)
			}
		}
	}
	cert, err := loadLogCert(cfg.CertFile, cfg.KeyFile, cfg.CertDir, []string{host})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		return nil, fmt.Errorf("log server: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return &LogServer{
		cfg: cfg, ln: ln, cert: cert,
		endpoint: "https://" + net.JoinHostPort(host, strconv.Itoa(port)),
		pin:      CertSHA256(cert.Certificate[0]),
	}, nil
}

// Endpoint is the server's URL, "https://host:port".
func (s *LogServer) Endpoint() string { return s.endpoint }

// CertSHA256 is the fingerprint of the serving certificate, for clients to pin.
func (s *LogServer) CertSHA256() string { return s.pin }

// Serve serves the tasks of a until ctx ends. Requests are refused with 503
// until the agent is ready.
func (s *LogServer) Serve(ctx context.Context, a *Agent) error {
	s.agent.Store(a)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /logs/{namespace}/{task}/{file}", s.serveLogs)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "agora agent log server: not found; use GET /logs/<namespace>/<task>/<stdout|stderr>", http.StatusNotFound)
	})
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          stdlog.New(logrWriter{s.cfg.Log}, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // followers see ctx end and return
	}()
	s.cfg.Log.Info("log server listening", "address", s.ln.Addr().String(), "endpoint", s.endpoint, "certSHA256", s.pin)
	err := srv.ServeTLS(s.ln, "", "")
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// logrWriter sends the HTTP server's own messages (TLS handshake errors,
// say) to the agent's log.
type logrWriter struct{ log logr.Logger }

func (w logrWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

// addLogEndpoint adds the log server to a status write that records the
// sandbox: no write of its own.
func (a *Agent) addLogEndpoint(st map[string]any) {
	if _, ok := st["sandbox"]; ok && a.cfg.LogEndpoint != "" {
		st["logEndpoint"] = a.cfg.LogEndpoint
		if a.cfg.LogCertSHA256 != "" {
			st["logCertSHA256"] = a.cfg.LogCertSHA256
		}
	}
}

// taskByName reads the Task ns/name and returns it if it is bound to this
// agent, else nil; ok is false until the agent is ready. The agent keeps
// no cache of Tasks: one read per request, already checked by two reviews.
func (a *Agent) taskByName(ctx context.Context, ns, name string) (t *agorav1.Task, ok bool, err error) {
	select {
	case <-a.ready:
	default:
		return nil, false, nil
	}
	t, err = a.get(ctx, types.NamespacedName{Namespace: ns, Name: name})
	if apierrors.IsNotFound(err) {
		return nil, true, nil
	}
	if err != nil {
		return nil, true, err
	}
	if t.Spec.AgentName != a.cfg.Name {
		return nil, true, nil
	}
	return t, true, nil
}

// runs says whether the agent still runs the task uid: a followed log ends
// once its process has ended (or the agent dropped or never knew it).
func (a *Agent) runs(uid types.UID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tasks[uid]
	return t != nil && t.final == nil && !t.gone
}

func (s *LogServer) serveLogs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, name, file := r.PathValue("namespace"), r.PathValue("task"), r.PathValue("file")

	// Who is asking: 401 before anything else is said.
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agora-agent"`)
		http.Error(w, "agora agent log server: a bearer token is required (the agent checks it with a TokenReview); "+
			"a kubeconfig user with a client certificate has none: use a token, or read the sandbox on the node", http.StatusUnauthorized)
		return
	}
	user, err := s.authenticate(ctx, token)
	if err != nil {
		var ue unauthenticated
		if errors.As(err, &ue) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agora-agent"`)
			http.Error(w, "agora agent log server: "+err.Error(), http.StatusUnauthorized)
			return
		}
		s.cfg.Log.Error(err, "token review failed")
		http.Error(w, "agora agent log server: could not review the token: "+err.Error(), http.StatusServiceUnavailable)
		return
	}

	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		http.Error(w, fmt.Sprintf("agora agent log server: bad namespace %q: %s", ns, strings.Join(msgs, "; ")), http.StatusBadRequest)
		return
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		http.Error(w, fmt.Sprintf("agora agent log server: bad task name %q: %s", name, strings.Join(msgs, "; ")), http.StatusBadRequest)
		return
	}
	if file != "stdout" && file != "stderr" {
		http.Error(w, fmt.Sprintf("agora agent log server: no file %q: a task has stdout and stderr", file), http.StatusNotFound)
		return
	}
	follow, tail, err := logQuery(r)
	if err != nil {
		http.Error(w, "agora agent log server: "+err.Error(), http.StatusBadRequest)
		return
	}

	// May they read it: asked before saying whether the task exists.
	allowed, reason, err := s.authorize(ctx, user, ns, name)
	if err != nil {
		s.cfg.Log.Error(err, "subject access review failed")
		http.Error(w, "agora agent log server: could not review access: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if !allowed {
		msg := fmt.Sprintf("agora agent log server: user %q cannot get tasks/log (resource \"tasks\", subresource \"log\", "+
			"API group %q) in namespace %q", user.Username, agorav1.GroupVersion.Group, ns)
		if reason != "" {
			msg += ": " + reason
		}
		http.Error(w, msg, http.StatusForbidden)
		return
	}

	a := s.agent.Load()
	if a == nil {
		http.Error(w, "agora agent log server: the agent is starting", http.StatusServiceUnavailable)
		return
	}
	task, ready, err := a.taskByName(ctx, ns, name)
	switch {
	case err != nil:
		s.cfg.Log.Error(err, "reading a task", "namespace", ns, "task", name)
		http.Error(w, "agora agent log server: could not read the task: "+err.Error(), http.StatusServiceUnavailable)
		return
	case !ready:
		http.Error(w, "agora agent log server: the agent is starting", http.StatusServiceUnavailable)
		return
	case task == nil:
		http.Error(w, fmt.Sprintf("agora agent log server: agent %s runs no task %s/%s", a.cfg.Name, ns, name), http.StatusNotFound)
		return
	}
	f, err := s.open(task, file)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, fs.ErrNotExist) {
			code = http.StatusNotFound
		}
		http.Error(w, "agora agent log server: "+err.Error(), code)
		return
	}
	defer f.Close()
	if tail >= 0 {
		off, err := TailOffset(f, tail)
		if err == nil {
			_, err = f.Seek(off, io.SeekStart)
		}
		if err != nil {
			http.Error(w, "agora agent log server: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, f); err != nil || !follow {
		return
	}
	s.follow(ctx, w, f, func() bool { return !a.runs(task.UID) })
}

// follow streams what is appended to f until ended reports the task ended
// (after one last copy) or the client goes away.
func (s *LogServer) follow(ctx context.Context, w http.ResponseWriter, f io.Reader, ended func() bool) {
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	flush()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		end := ended() // before the copy, so nothing written before the end is missed
		n, err := io.Copy(w, f)
		if err != nil {
			return
		}
		if n > 0 {
			flush()
		}
		if end {
			return
		}
	}
}

// open opens a task's stdout or stderr in its sandbox, found from the
// Task's UID. The sandbox belongs to the task's user, so a task could put a
// symlink or a hard link to another file there: only a regular file with
// one link is served.
func (s *LogServer) open(task *agorav1.Task, file string) (*os.File, error) {
	dir, err := s.cfg.Sandbox(string(task.UID))
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(dir+string(os.PathSeparator)+file, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		state := string(task.Status.State)
		if state == "" {
			state = "not bound yet"
		}
		return nil, fmt.Errorf("task %s/%s has no %s on this agent (%s): it has not started, or its sandbox was removed: %w",
			task.Namespace, task.Name, file, state, fs.ErrNotExist)
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("task %s/%s: %s is a symbolic link; refusing to follow it", task.Namespace, task.Name, file)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		if !fi.Mode().IsRegular() {
			err = fmt.Errorf("task %s/%s: %s is not a regular file; refusing to serve it", task.Namespace, task.Name, file)
		} else if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			err = fmt.Errorf("task %s/%s: %s has other hard links; refusing to serve it", task.Namespace, task.Name, file)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// logQuery parses follow=1|true and tail=N (-1, the default, is all).
func logQuery(r *http.Request) (follow bool, tail int, err error) {
	q := r.URL.Query()
	switch v := q.Get("follow"); v {
	case "", "0", "false":
	case "1", "true":
		follow = true
	default:
		return false, 0, fmt.Errorf("bad follow=%q: use 1 or 0", v)
	}
	tail = -1
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			return false, 0, fmt.Errorf("bad tail=%q: use a number of lines (-1 for all)", v)
		}
		tail = n
	}
	return follow, tail, nil
}

// TailOffset is where the last n lines of f begin (a last line without a
// newline counts as a line).
func TailOffset(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if n == 0 {
		return size, nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	end := size
	lines := 0
	for end > 0 {
		start := max(end-block, 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			if start+int64(i) == size-1 {
				continue // the file's final newline ends the last line
			}
			lines++
			if lines == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// unauthenticated: the apiserver does not accept the token.
type unauthenticated struct{ why string }

func (e unauthenticated) Error() string { return e.why }

func (s *LogServer) authenticate(ctx context.Context, token string) (authnv1.UserInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	tr, err := s.cfg.Kube.AuthenticationV1().TokenReviews().Create(ctx,
		&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, err
	}
	if !tr.Status.Authenticated {
		why := "the bearer token was not accepted by the apiserver (TokenReview)"
		if tr.Status.Error != "" {
			why += ": " + tr.Status.Error
		}
		return authnv1.UserInfo{}, unauthenticated{why}
	}
	return tr.Status.User, nil
}

func (s *LogServer) authorize(ctx context.Context, u authnv1.UserInfo, ns, name string) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Verb: "get", Group: agorav1.GroupVersion.Group, Version: agorav1.GroupVersion.Version,
			Resource: "tasks", Subresource: "log", Name: name,
		},
	}}
	out, err := s.cfg.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return out.Status.Allowed && !out.Status.Denied, out.Status.Reason, nil
}
