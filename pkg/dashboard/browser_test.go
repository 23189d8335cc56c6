package dashboard_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/dashboard"
)

const chromium = "/usr/bin/chromium"

// runChromium loads url in headless Chromium and returns its stdout. The
// virtual time budget lets the page's fetches and first renders finish
// before the DOM is dumped or the screenshot taken.
func runChromium(t *testing.T, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,1600", "--virtual-time-budget=6000"}, extra...)
	cmd := exec.CommandContext(ctx, chromium, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// TestBrowserRendersLiveData loads the page in headless Chromium once live
// data exists and checks the DOM holds what only the page's JavaScript can
// have put there from the API: framework names, their shares, agents,
// task reasons and the chart's lines.
func TestBrowserRendersLiveData(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("skipping the browser test: %s is absent (apt-get install -y chromium): %v", chromium, err)
	}
	base, _ := startDashboard(t)
	w := makeWorld(t)
	eventually(t, 30*time.Second, func() string {
		var s dashboard.State
		getJSON(t, base+"/api/state", &s)
		return stateReady(&s, w)
	})
	// Move spark's share a few times so the chart has a line to draw.
	for _, share := range []string{"0.100", "0.200", "0.300", "0.375"} {
		var f agorav1.Framework
		must(t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "spark"}, &f))
		f.Status.DominantShare = share
		must(t, env.Client.Status().Update(context.Background(), &f))
		time.Sleep(500 * time.Millisecond)
	}

	dom := runChromium(t, base+"/", "--dump-dom")
	if !strings.Contains(dom, `data-loaded="true"`) {
		t.Fatalf("the page never rendered API data:\n%s", dom)
	}
	page := staticHTML(t)
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, "\n")
	for _, want := range []string{w.spark, w.web, "37.5%", "12.5%", w.a1, w.a2, "draining",
		agorav1.ReasonContainerLimitationMemory, "exit 137", "TASK_RUNNING", "UNBOUND", "spark-oom"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
		if strings.Contains(page, want) {
			t.Errorf("%q is in the static HTML: it proves nothing about rendering", want)
		}
	}
	// spark's row shows its share next to its name.
	if !regexp.MustCompile(regexp.QuoteMeta(w.spark) + `\n(.|\n)*?37\.5%`).MatchString(text) {
		t.Errorf("spark's row does not show 37.5%%")
	}
	if n := strings.Count(dom, `class="line"`); n < 1 {
		t.Errorf("the share chart has %d lines, want at least spark's", n)
	}

	if path := os.Getenv("AGORA_DASHBOARD_SCREENSHOT"); path != "" {
		runChromium(t, base+"/", "--screenshot="+path, "--hide-scrollbars")
		t.Logf("screenshot written to %s", path)
	}
}

// staticHTML is the embedded page as served, before any script runs.
func staticHTML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
