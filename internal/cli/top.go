package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
	"github.com/agora-sched/agora/pkg/sdk"
)

type topOptions struct {
	once       bool
	interval   time.Duration
	kubeconfig string
}

func newTopCommand() *cobra.Command {
	o := &topOptions{}
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show frameworks' shares and allocations and agents' usage, refreshed live",
		Long: `top shows every framework with its roles (and their weights), dominant share,
allocated resources and tasks, and every agent with its used and total
resources. In a terminal it redraws every --interval until Ctrl-C; with
--once, or when the output is not a terminal, it prints one table and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTop(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&o.once, "once", false, "print once and exit")
	cmd.Flags().DurationVar(&o.interval, "interval", 2*time.Second, "time between refreshes")
	cmd.Flags().StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	return cmd
}

// topSnapshot is what one refresh shows.
type topSnapshot struct {
	Frameworks []agorav1.Framework
	Agents     []agorav1.Agent
	Roles      []agorav1.ResourceRole
}

func runTop(ctx context.Context, o *topOptions, out io.Writer) error {
	if o.interval <= 0 {
		return fmt.Errorf("agora top: --interval must be positive, got %s", o.interval)
	}
	rc, _, err := sdk.LoadRESTConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(rc, client.Options{Scheme: sdk.Scheme()})
	if err != nil {
		return err
	}
	f, isFile := out.(*os.File)
	live := !o.once && isFile && term.IsTerminal(int(f.Fd()))
	for {
		snap, err := fetchTop(ctx, c)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if live {
			buf.WriteString("\x1b[H\x1b[2J") // home and clear: redraw in place
		}
		renderTop(&buf, snap)
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
		if !live {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

func fetchTop(ctx context.Context, c client.Client) (topSnapshot, error) {
	var s topSnapshot
	var fws agorav1.FrameworkList
	var agents agorav1.AgentList
	var roles agorav1.ResourceRoleList
	if err := c.List(ctx, &fws); err != nil {
		return s, fmt.Errorf("agora top: listing frameworks: %w", err)
	}
	if err := c.List(ctx, &agents); err != nil {
		return s, fmt.Errorf("agora top: listing agents: %w", err)
	}
	if err := c.List(ctx, &roles); err != nil {
		return s, fmt.Errorf("agora top: listing resource roles: %w", err)
	}
	return topSnapshot{Frameworks: fws.Items, Agents: agents.Items, Roles: roles.Items}, nil
}

// renderTop writes a summary line, a frameworks table sorted by dominant
// share (largest first) and an agents table sorted by name.
func renderTop(w io.Writer, s topSnapshot) {
	weights := map[string]string{}
	for _, r := range s.Roles {
		if r.Spec.Weight != nil {
			weights[agorav1.RoleName(r.Name)] = r.Spec.Weight.String()
		}
	}
	var total, used resources.Resources
	ready := 0
	for _, a := range s.Agents {
		total = total.Add(a.Status.Total.MustModel())
		used = used.Add(a.Status.Allocated.MustModel())
		if agentReady(&a) {
			ready++
		}
	}
	fmt.Fprintf(w, "frameworks: %d   agents: %d (%d ready)   cpus: %s   mem: %s\n\n",
		len(s.Frameworks), len(s.Agents), ready, usedOf(used, total, resources.CPUs), usedOf(used, total, resources.Mem))

	fws := slices.Clone(s.Frameworks)
	slices.SortFunc(fws, func(a, b agorav1.Framework) int {
		if c := strings.Compare(shareKey(b.Status.DominantShare), shareKey(a.Status.DominantShare)); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FRAMEWORK\tPHASE\tROLES (WEIGHT)\tSHARE\tCPUS\tMEM\tTASKS\tOFFERS")
	for _, f := range fws {
		var alloc resources.Resources
		for _, sh := range f.Status.Shares {
			alloc = alloc.Add(sh.Allocated.MustModel())
		}
		roles := make([]string, 0, len(f.Spec.Roles))
		for _, r := range f.Spec.Roles {
			wt := weights[r]
			if wt == "" {
				wt = "1"
			}
			if slices.Contains(f.Spec.SuppressedRoles, r) {
				wt += ",suppressed"
			}
			roles = append(roles, r+"("+wt+")")
		}
		if len(roles) == 0 {
			roles = append(roles, "-")
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", f.Namespace, f.Name, orDash(string(f.Status.Phase)),
			strings.Join(roles, ","), percent(f.Status.DominantShare), cpus(alloc.Get(resources.CPUs)),
			mem(alloc.Get(resources.Mem)), f.Status.ActiveTasks, f.Status.OutstandingOffers)
	}
	tw.Flush()
	fmt.Fprintln(w)

	agents := slices.Clone(s.Agents)
	slices.SortFunc(agents, func(a, b agorav1.Agent) int { return strings.Compare(a.Name, b.Name) })
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tREADY\tCPUS USED/TOTAL\tMEM USED/TOTAL\tTASKS")
	for _, a := range agents {
		t, u := a.Status.Total.MustModel(), a.Status.Allocated.MustModel()
		readiness := "no"
		if agentReady(&a) {
			readiness = "yes"
		}
		if a.Spec.Unschedulable {
			readiness += ",draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", a.Name, readiness, usedOf(u, t, resources.CPUs), usedOf(u, t, resources.Mem), a.Status.Tasks)
	}
	tw.Flush()
}

func agentReady(a *agorav1.Agent) bool {
	for _, c := range a.Status.Conditions {
		if c.Type == agorav1.AgentConditionReady {
			return c.Status == "True"
		}
	}
	return false
}

// shareKey makes decimal share strings sort numerically ("" lowest).
func shareKey(s string) string {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%012.6f", v)
}

func percent(share string) string {
	v, err := strconv.ParseFloat(share, 64)
	if err != nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

func usedOf(used, total resources.Resources, k resources.Kind) string {
	format := mem
	if k == resources.CPUs {
		format = cpus
	}
	s := format(used.Get(k)) + "/" + format(total.Get(k))
	if t := total.Get(k); t > 0 {
		s += fmt.Sprintf(" (%d%%)", used.Get(k)*100/t)
	}
	return s
}

func cpus(milli int64) string {
	return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)
}

func mem(b int64) string {
	switch {
	case b >= resources.GiB:
		return strconv.FormatFloat(math.Round(float64(b)*10/float64(resources.GiB))/10, 'f', -1, 64) + "Gi"
	case b >= resources.MiB || b == 0:
		return strconv.FormatInt(b/resources.MiB, 10) + "Mi"
	}
	return strconv.FormatInt(b, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
