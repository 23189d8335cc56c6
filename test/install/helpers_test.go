package install

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent/runtime"
	"github.com/agora-sched/agora/internal/testenv"
)

// identity is a client authenticated as a ServiceAccount by a bearer token
// from the TokenRequest API, as a pod (or an operator's `kubectl create
// token`) would be.
type identity struct {
	user       string
	cfg        *rest.Config
	c          client.Client
	cs         *kubernetes.Clientset
	kubeconfig string // file with the same credentials, for the processes
}

// tokenIdentity requests a token for ServiceAccount ns/name, bound to
// bound when it is not nil (for the agent: a Node, which gives the token
// the node-name the admission policy keys on).
func tokenIdentity(t *testing.T, ctx context.Context, admin *rest.Config, ns, name string, bound *authnv1.BoundObjectReference, dir string) *identity {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(admin)
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp, BoundObjectRef: bound},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	cfg := &rest.Config{
		Host:            admin.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData},
		BearerToken:     tr.Status.Token,
		QPS:             100, Burst: 200,
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	id := &identity{user: "system:serviceaccount:" + ns + ":" + name, cfg: cfg, c: c, cs: kubernetes.NewForConfigOrDie(cfg)}
	if dir != "" {
		kc := clientcmdapi.NewConfig()
		kc.Clusters["c"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
		kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
		kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: ns}
		kc.CurrentContext = "c"
		id.kubeconfig = filepath.Join(dir, ns+"-"+name+".kubeconfig")
		if err := clientcmd.WriteToFile(*kc, id.kubeconfig); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// proc is a binary of this repository running as a local process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc runs bin with args, logging to dir/<name>.log. Cleanup stops it
// (SIGTERM, SIGKILL after 10 s) and shows its log tail if the test failed.
func startProc(t *testing.T, name, bin, dir string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a stop reaches anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", name, tail(logPath, 40))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs a command in dir and fails the test with its output if it fails.
func run(t *testing.T, ctx context.Context, dir string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// eventually polls cond every 200 ms until it returns true or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ruleLines is what id may do in namespace ns, from a
// SelfSubjectRulesReview made as id itself: one line per (group, resource,
// names) with its verbs, sorted, so a widened role shows as a changed line.
func ruleLines(t *testing.T, ctx context.Context, id *identity, ns string) []string {
	t.Helper()
	r, err := id.cs.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authzv1.SelfSubjectRulesReview{
		Spec: authzv1.SelfSubjectRulesReviewSpec{Namespace: ns},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("rules review of %s in %s: %v", id.user, ns, err)
	}
	verbs := map[string]map[string]bool{}
	add := func(key string, vs []string) {
		if verbs[key] == nil {
			verbs[key] = map[string]bool{}
		}
		for _, v := range vs {
			verbs[key][v] = true
		}
	}
	for _, rule := range r.Status.ResourceRules {
		names := "*"
		if len(rule.ResourceNames) > 0 {
			names = strings.Join(slices.Sorted(slices.Values(rule.ResourceNames)), ",")
		}
		for _, g := range rule.APIGroups {
			if g == "" {
				g = "core"
			}
			for _, res := range rule.Resources {
				add(fmt.Sprintf("%s %s %s", g, res, names), rule.Verbs)
			}
		}
	}
	for _, rule := range r.Status.NonResourceRules {
		for _, u := range rule.NonResourceURLs {
			add("nonResourceURL "+u, rule.Verbs)
		}
	}
	lines := make([]string, 0, len(verbs))
	for k, vs := range verbs {
		lines = append(lines, fmt.Sprintf("%s: %s", k, strings.Join(slices.Sorted(maps.Keys(vs)), " ")))
	}
	if r.Status.Incomplete {
		lines = append(lines, "incomplete: "+r.Status.EvaluationError)
	}
	slices.Sort(lines)
	return lines
}

// rulesGolden renders what id may do in each namespace beyond baseline,
// what every authenticated identity may do (discovery, self reviews): the
// golden files then show Agora's grants alone and survive Kubernetes
// upgrades that change the defaults.
func rulesGolden(t *testing.T, ctx context.Context, id *identity, baseline []string, namespaces ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# What %s may do, beyond what every\n# authenticated user may. Review every change: it widens or narrows a role.\n", id.user)
	for _, ns := range namespaces {
		fmt.Fprintf(&b, "\n[namespace %s]\n", ns)
		n := 0
		for _, l := range ruleLines(t, ctx, id, ns) {
			if !slices.Contains(baseline, l) {
				fmt.Fprintln(&b, l)
				n++
			}
		}
		if n == 0 {
			fmt.Fprintln(&b, "(nothing)")
		}
	}
	return b.String()
}

// checkTaskUsers checks the agent's user flags as the DaemonSet sets them:
// an unprivileged --default-user, a valid --task-uid-range (one uid per
// framework) and no --allowed-users.
func checkTaskUsers(t *testing.T, args []string) {
	t.Helper()
	flags := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			flags[k] = v
		}
	}
	if user := flags["--default-user"]; user == "" || user == "root" || user == "0" {
		t.Errorf("the agent DaemonSet runs tasks as %q by default; want an unprivileged --default-user", user)
	}
	if r, err := runtime.ParseIDRange(flags["--task-uid-range"]); r == nil || err != nil {
		t.Errorf("the agent DaemonSet's --task-uid-range is %q (%v); want a range, so frameworks get their own uids",
			flags["--task-uid-range"], err)
	}
	if v, ok := flags["--allowed-users"]; ok {
		t.Errorf("the agent DaemonSet allows tasks to name users %q; want none by default", v)
	}
}
