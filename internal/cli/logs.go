package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/sdk"
)

type logsOptions struct {
	namespace  string
	kubeconfig string
	stderr     bool
	follow     bool
	tail       int
	insecure   bool
	poll       time.Duration
}

func newLogsCommand() *cobra.Command {
	o := &logsOptions{poll: 500 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "logs TASK",
		Short: "Print a task's stdout (or stderr) from its sandbox",
		Long: `logs prints the stdout, or with --stderr the stderr, that a task wrote in its
sandbox (Task.status.sandbox). With -f it keeps printing new output until
the task ends.

The logs come from the log server of the task's agent (Task
status.logEndpoint), which checks that you may get tasks/log in the task's
namespace. The agent identifies you by the bearer token of your kubeconfig
user; a user with a client certificate has none, and can read the sandbox
only on the agent's own host (agora local, or a shell on the node), which
logs then does. See "Task logs" in docs/sdk.md.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("agora logs needs exactly one task name, got %d: agora logs TASK [-n NAMESPACE] [--stderr] [-f] [--tail N]", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), o, args[0], cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "", "namespace of the task (default: the kubeconfig's)")
	cmd.Flags().StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().BoolVar(&o.stderr, "stderr", false, "print stderr instead of stdout")
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new output until the task ends")
	cmd.Flags().IntVar(&o.tail, "tail", -1, "print only the last N lines (-1: all)")
	cmd.Flags().BoolVar(&o.insecure, "insecure-skip-tls-verify-agent", false, "do not verify the agent log server's certificate (by default it must match the fingerprint the agent recorded in the Task, or be valid for its host)")
	return cmd
}

func runLogs(ctx context.Context, o *logsOptions, name string, out io.Writer) error {
	rc, ns, err := sdk.LoadRESTConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	if o.namespace != "" {
		ns = o.namespace
	}
	c, err := client.New(rc, client.Options{Scheme: sdk.Scheme()})
	if err != nil {
		return err
	}
	get := func() (*agorav1.Task, error) {
		t := &agorav1.Task{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, t)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("agora logs: no task %q in namespace %q", name, ns)
		}
		return t, err
	}
	t, err := get()
	if err != nil {
		return err
	}
	// The agent's log server first; the sandbox on this host if the caller
	// has no token, or the agent cannot be reached.
	var remoteErr error
	if t.Status.LogEndpoint != "" {
		if !hasTokenCredentials(rc) {
			remoteErr = fmt.Errorf("agora logs: task %s ran on agent %s, whose log server (%s) identifies callers by a bearer token, "+
				"and your kubeconfig user has no token credentials (a client certificate, say). "+
				"Use a kubeconfig with a token (for example from kubectl create token), or run agora logs on that node",
				name, t.Spec.AgentName, t.Status.LogEndpoint)
		} else {
			err := remoteLogs(ctx, o, rc, t, out)
			var unreachable *agentUnreachable
			if !errors.As(err, &unreachable) {
				return err
			}
			remoteErr = err
		}
	}
	path, err := logPath(t, o.stderr)
	if err != nil {
		if remoteErr != nil {
			return remoteErr
		}
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if remoteErr != nil {
			return remoteErr
		}
		return fmt.Errorf("agora logs: task %s ran on agent %s; its sandbox %s is not on this host, "+
			"and the agent records no log server (it runs with --log-bind-address=\"\"?): run agora logs on that node",
			name, t.Spec.AgentName, t.Status.Sandbox)
	}
	if err != nil {
		return fmt.Errorf("agora logs: %w", err)
	}
	defer f.Close()
	if o.tail >= 0 {
		off, err := agent.TailOffset(f, o.tail)
		if err == nil {
			_, err = f.Seek(off, io.SeekStart)
		}
		if err != nil {
			return fmt.Errorf("agora logs: %w", err)
		}
	}
	if !o.follow {
		_, err = io.Copy(out, f)
		return err
	}
	return follow(ctx, f, out, o.poll, func() (bool, error) {
		t, err := get()
		if err != nil {
			return false, err
		}
		return sdk.IsTerminal(t.Status.State), nil
	})
}

// hasTokenCredentials: the kubeconfig user authenticates with a bearer
// token (given, in a file, or from an exec or auth-provider plugin).
func hasTokenCredentials(rc *rest.Config) bool {
	return rc.BearerToken != "" || rc.BearerTokenFile != "" || rc.ExecProvider != nil || rc.AuthProvider != nil
}

// agentUnreachable: no HTTP answer from the agent's log server.
type agentUnreachable struct{ err error }

func (e *agentUnreachable) Error() string { return e.err.Error() }
func (e *agentUnreachable) Unwrap() error { return e.err }

// remoteLogs reads the task's log from its agent's log server, sending the
// kubeconfig user's bearer token (and no other credential).
func remoteLogs(ctx context.Context, o *logsOptions, rc *rest.Config, t *agorav1.Task, out io.Writer) error {
	base, err := url.Parse(t.Status.LogEndpoint)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return fmt.Errorf("agora logs: task %s has an unexpected log endpoint %q", t.Name, t.Status.LogEndpoint)
	}
	file := "stdout"
	if o.stderr {
		file = "stderr"
	}
	u := *base
	u.Path = "/logs/" + t.Namespace + "/" + t.Name + "/" + file
	q := url.Values{}
	if o.follow {
		q.Set("follow", "1")
	}
	if o.tail >= 0 {
		q.Set("tail", strconv.Itoa(o.tail))
	}
	u.RawQuery = q.Encode()

	hc, err := agentHTTPClient(rc, t.Status.LogCertSHA256, o.insecure)
	if err != nil {
		return fmt.Errorf("agora logs: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &agentUnreachable{fmt.Errorf("agora logs: cannot reach the log server of agent %s at %s: %w", t.Spec.AgentName, t.Status.LogEndpoint, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		text := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(msg)), "agora agent log server: "))
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("agora logs: agent %s did not accept your credentials (401): %s", t.Spec.AgentName, text)
		case http.StatusForbidden:
			return fmt.Errorf("agora logs: agent %s refused (403): %s", t.Spec.AgentName, text)
		}
		return fmt.Errorf("agora logs: agent %s answered %s: %s", t.Spec.AgentName, resp.Status, text)
	}
	if _, err := io.Copy(out, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("agora logs: reading from agent %s: %w", t.Spec.AgentName, err)
	}
	return nil
}

// agentHTTPClient trusts the agent's certificate if it has the fingerprint
// the agent recorded in the Task, or if it is valid for the host by the
// system's CAs (a certificate given to the agent by flags); insecure trusts
// anything. It sends the kubeconfig user's token: not their client
// certificate, basic-auth password or impersonation headers.
func agentHTTPClient(rc *rest.Config, pin string, insecure bool) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // verified below
	if !insecure {
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the agent sent no certificate")
			}
			if pin != "" && agent.CertSHA256(cs.PeerCertificates[0].Raw) == pin {
				return nil
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: inter})
			if err != nil {
				return fmt.Errorf("the agent's certificate does not match the fingerprint in the Task's status.logCertSHA256 "+
					"and is not valid for %s (%v); --insecure-skip-tls-verify-agent skips this check", cs.ServerName, err)
			}
			return nil
		}
	}
	tc, err := rc.TransportConfig()
	if err != nil {
		return nil, err
	}
	tc.Username, tc.Password = "", ""
	tc.Impersonate = transport.ImpersonationConfig{}
	rt, err := transport.HTTPWrappersForConfig(tc, &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

// logPath is the sandbox file to read, or an error saying why there is none.
func logPath(t *agorav1.Task, stderr bool) (string, error) {
	sb := t.Status.Sandbox
	switch {
	case sb == "":
		state := string(t.Status.State)
		if state == "" {
			state = "not bound yet"
		}
		return "", fmt.Errorf("agora logs: task %s has no sandbox yet (%s): it has not started", t.Name, state)
	case strings.Contains(sb, "://"):
		return "", fmt.Errorf("agora logs: task %s has no log files: its sandbox is %s (a simulated agent?)", t.Name, sb)
	case !filepath.IsAbs(sb):
		return "", fmt.Errorf("agora logs: task %s has an unexpected sandbox %q", t.Name, sb)
	}
	file := "stdout"
	if stderr {
		file = "stderr"
	}
	return filepath.Join(sb, file), nil
}

// follow copies what f has, then polls for more until ended reports the
// task ended (after one last copy) or ctx ends.
func follow(ctx context.Context, f io.Reader, out io.Writer, poll time.Duration, ended func() (bool, error)) error {
	for {
		if _, err := io.Copy(out, f); err != nil {
			return err
		}
		done, err := ended()
		if err != nil {
			return err
		}
		if done {
			_, err := io.Copy(out, f) // what it wrote before it ended
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}
