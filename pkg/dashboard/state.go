package dashboard

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
	"github.com/agora-sched/agora/pkg/sdk"
)

// State is the /api/state answer: one consistent-enough view of the cache.
type State struct {
	Time       time.Time       `json:"time"`
	Summary    Summary         `json:"summary"`
	Frameworks []FrameworkView `json:"frameworks"`
	Roles      []RoleView      `json:"roles"`
	Agents     []AgentView     `json:"agents"`
	Offers     []OfferGroup    `json:"offers"`
	Tasks      TaskView        `json:"tasks"`
}

// Res is a resource amount in plain numbers for the page: cores, bytes,
// whole GPUs.
type Res struct {
	CPUs float64 `json:"cpus"`
	Mem  int64   `json:"mem"`
	Disk int64   `json:"disk"`
	GPUs int64   `json:"gpus"`
}

func resOf(r agorav1.Resources) Res { return resOfModel(r.MustModel()) }

func resOfModel(m resources.Resources) Res {
	return Res{CPUs: float64(m.Get(resources.CPUs)) / 1000, Mem: m.Get(resources.Mem),
		Disk: m.Get(resources.Disk), GPUs: m.Get(resources.GPUs)}
}

// Summary is the header line.
type Summary struct {
	Frameworks        int `json:"frameworks"`
	ActiveFrameworks  int `json:"activeFrameworks"`
	Agents            int `json:"agents"`
	ReadyAgents       int `json:"readyAgents"`
	Total             Res `json:"total"`     // over all agents
	Allocated         Res `json:"allocated"` // as the agents report it
	OutstandingOffers int `json:"outstandingOffers"`
	AnsweredOffers    int `json:"answeredOffers"` // answered, not settled yet
	ActiveTasks       int `json:"activeTasks"`
}

// FrameworkView is one framework. Shares and Allocated come from the
// master's status (written at most every 10 s); task and offer counts are
// live from the cache.
type FrameworkView struct {
	Namespace         string         `json:"namespace"`
	Name              string         `json:"name"`
	Phase             string         `json:"phase"`
	Connected         bool           `json:"connected"`
	Deactivated       bool           `json:"deactivated"`
	Roles             []string       `json:"roles"`
	SuppressedRoles   []string       `json:"suppressedRoles"`
	DominantShare     float64        `json:"dominantShare"`
	Shares            []RoleShare    `json:"shares"`
	Allocated         Res            `json:"allocated"`
	ActiveTasks       int            `json:"activeTasks"`
	TaskCounts        map[string]int `json:"taskCounts"`
	OutstandingOffers int            `json:"outstandingOffers"`
}

// RoleShare is a framework's share in one role.
type RoleShare struct {
	Role  string  `json:"role"`
	Share float64 `json:"share"`
}

// RoleView is one ResourceRole.
type RoleView struct {
	Role       string  `json:"role"`
	Weight     float64 `json:"weight"`
	Share      float64 `json:"share"`
	Allocated  Res     `json:"allocated"`
	Frameworks int32   `json:"frameworks"`
}

// AgentView is one agent as it reports itself.
type AgentView struct {
	Name          string `json:"name"`
	Hostname      string `json:"hostname"`
	Ready         bool   `json:"ready"`
	Unschedulable bool   `json:"unschedulable"`
	Total         Res    `json:"total"`
	Allocated     Res    `json:"allocated"`
	Tasks         int32  `json:"tasks"`
	Version       string `json:"version"`
}

// OfferGroup is the outstanding (unanswered) offers of one framework, and
// how many of its answered offers the master has not settled yet (a
// growing number means the master lags behind).
type OfferGroup struct {
	Framework string    `json:"framework"` // namespace/name
	Count     int       `json:"count"`
	Resources Res       `json:"resources"`
	Agents    int       `json:"agents"`
	Oldest    time.Time `json:"oldest"`
	Answered  int       `json:"answered"`
}

// TaskView counts tasks and lists the most recently changed ones.
type TaskView struct {
	Total   int            `json:"total"`
	Active  int            `json:"active"`
	ByState map[string]int `json:"byState"` // "UNBOUND" for tasks the master has not bound yet
	Recent  []TaskRow      `json:"recent"`
}

// TaskRow is one task.
type TaskRow struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Framework string    `json:"framework"`
	Agent     string    `json:"agent"`
	Resources Res       `json:"resources"`
	State     string    `json:"state"`
	Source    string    `json:"source"`
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	ExitCode  *int32    `json:"exitCode,omitempty"`
	Updated   time.Time `json:"updated"`
}

const unbound = "UNBOUND"

// snapshot builds the State from the cache. It lists without deep copies
// (the objects are only read), which matters with many Tasks.
func (d *Dashboard) snapshot(ctx context.Context, now time.Time) (*State, error) {
	var (
		fws    agorav1.FrameworkList
		agents agorav1.AgentList
		offers agorav1.OfferList
		tasks  agorav1.TaskList
		roles  agorav1.ResourceRoleList
	)
	for _, l := range []client.ObjectList{&fws, &agents, &offers, &tasks, &roles} {
		if err := d.cache.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
	}
	s := &State{Time: now, Frameworks: []FrameworkView{}, Roles: []RoleView{}, Agents: []AgentView{}, Offers: []OfferGroup{},
		Tasks: TaskView{ByState: map[string]int{}, Recent: []TaskRow{}}}

	byKey := map[string]*FrameworkView{}
	for i := range fws.Items {
		f := &fws.Items[i]
		v := FrameworkView{Namespace: f.Namespace, Name: f.Name, Phase: string(f.Status.Phase),
			Connected:   meta.IsStatusConditionTrue(f.Status.Conditions, agorav1.FrameworkConditionConnected),
			Deactivated: f.Spec.Deactivated, Roles: orEmpty(f.Spec.Roles), SuppressedRoles: orEmpty(f.Spec.SuppressedRoles),
			DominantShare: parseShare(f.Status.DominantShare), Shares: []RoleShare{}, TaskCounts: map[string]int{}}
		var alloc resources.Resources
		for _, sh := range f.Status.Shares {
			v.Shares = append(v.Shares, RoleShare{Role: sh.Role, Share: parseShare(sh.Share)})
			alloc = alloc.Add(sh.Allocated.MustModel())
		}
		v.Allocated = resOfModel(alloc)
		if v.Phase == string(agorav1.FrameworkActive) {
			s.Summary.ActiveFrameworks++
		}
		s.Frameworks = append(s.Frameworks, v)
	}
	// Largest share first, as DRF would serve them last.
	slices.SortFunc(s.Frameworks, func(a, b FrameworkView) int {
		if c := cmp.Compare(b.DominantShare, a.DominantShare); c != 0 {
			return c
		}
		return cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for i := range s.Frameworks {
		byKey[s.Frameworks[i].Namespace+"/"+s.Frameworks[i].Name] = &s.Frameworks[i]
	}
	s.Summary.Frameworks = len(s.Frameworks)

	for i := range roles.Items {
		r := &roles.Items[i]
		w := 1.0
		if r.Spec.Weight != nil && r.Spec.Weight.AsApproximateFloat64() > 0 {
			w = r.Spec.Weight.AsApproximateFloat64()
		}
		s.Roles = append(s.Roles, RoleView{Role: agorav1.RoleName(r.Name), Weight: w, Share: parseShare(r.Status.Share),
			Allocated: resOf(r.Status.Allocated), Frameworks: r.Status.Frameworks})
	}
	slices.SortFunc(s.Roles, func(a, b RoleView) int { return strings.Compare(a.Role, b.Role) })

	var total, allocated resources.Resources
	for i := range agents.Items {
		a := &agents.Items[i]
		v := AgentView{Name: a.Name, Hostname: a.Status.Hostname, Unschedulable: a.Spec.Unschedulable,
			Ready: meta.IsStatusConditionTrue(a.Status.Conditions, agorav1.AgentConditionReady),
			Total: resOf(a.Status.Total), Allocated: resOf(a.Status.Allocated), Tasks: a.Status.Tasks, Version: a.Status.Version}
		total = total.Add(a.Status.Total.MustModel())
		allocated = allocated.Add(a.Status.Allocated.MustModel())
		if v.Ready {
			s.Summary.ReadyAgents++
		}
		s.Agents = append(s.Agents, v)
	}
	slices.SortFunc(s.Agents, func(a, b AgentView) int { return strings.Compare(a.Name, b.Name) })
	s.Summary.Agents = len(s.Agents)
	s.Summary.Total, s.Summary.Allocated = resOfModel(total), resOfModel(allocated)

	groups := map[string]*OfferGroup{}
	groupAgents := map[string]map[string]bool{}
	groupRes := map[string]resources.Resources{}
	for i := range offers.Items {
		o := &offers.Items[i]
		// An Offer with no status.phase is outstanding until it is answered.
		if o.Status.Phase != "" && o.Status.Phase != agorav1.OfferOutstanding {
			continue
		}
		key := o.Namespace + "/" + o.Spec.FrameworkName
		g := groups[key]
		if g == nil {
			g = &OfferGroup{Framework: key}
			groups[key], groupAgents[key] = g, map[string]bool{}
		}
		if o.Spec.Answer != nil {
			g.Answered++
			s.Summary.AnsweredOffers++
			continue
		}
		g.Count++
		groupAgents[key][o.Spec.AgentName] = true
		groupRes[key] = groupRes[key].Add(o.Spec.Resources.MustModel())
		if g.Oldest.IsZero() || o.CreationTimestamp.Time.Before(g.Oldest) {
			g.Oldest = o.CreationTimestamp.Time
		}
		if f := byKey[key]; f != nil {
			f.OutstandingOffers++
		}
		s.Summary.OutstandingOffers++
	}
	for key, g := range groups {
		g.Agents, g.Resources = len(groupAgents[key]), resOfModel(groupRes[key])
		s.Offers = append(s.Offers, *g)
	}
	slices.SortFunc(s.Offers, func(a, b OfferGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Framework, b.Framework))
	})

	recent := &taskHeap{}
	for i := range tasks.Items {
		t := &tasks.Items[i]
		st := string(t.Status.State)
		if st == "" {
			st = unbound
		}
		s.Tasks.Total++
		s.Tasks.ByState[st]++
		active := !sdk.IsTerminal(t.Status.State)
		if active {
			s.Tasks.Active++
		}
		if f := byKey[t.Namespace+"/"+t.Spec.FrameworkName]; f != nil {
			f.TaskCounts[st]++
			if active {
				f.ActiveTasks++
			}
		}
		heap.Push(recent, taskRef{t: t, at: lastChange(t)})
		if recent.Len() > d.opts.RecentTasks {
			heap.Pop(recent)
		}
	}
	s.Summary.ActiveTasks = s.Tasks.Active
	refs := []taskRef(*recent)
	slices.SortFunc(refs, func(a, b taskRef) int {
		return cmp.Or(b.at.Compare(a.at), strings.Compare(a.t.Namespace+"/"+a.t.Name, b.t.Namespace+"/"+b.t.Name))
	})
	for _, r := range refs {
		t := r.t
		st := string(t.Status.State)
		if st == "" {
			st = unbound
		}
		s.Tasks.Recent = append(s.Tasks.Recent, TaskRow{Namespace: t.Namespace, Name: t.Name, Framework: t.Spec.FrameworkName,
			Agent: t.Spec.AgentName, Resources: resOf(t.Spec.Resources), State: st, Source: string(t.Status.Source),
			Reason: t.Status.Reason, Message: t.Status.Message, ExitCode: t.Status.ExitCode, Updated: r.at})
	}
	return s, nil
}

// lastChange is the latest time the task's status records.
func lastChange(t *agorav1.Task) time.Time {
	at := t.CreationTimestamp.Time
	for _, ts := range []*metav1.Time{t.Status.BindTime, t.Status.StartTime, t.Status.CompletionTime} {
		if ts != nil && ts.After(at) {
			at = ts.Time
		}
	}
	return at
}

type taskRef struct {
	t  *agorav1.Task
	at time.Time
}

// taskHeap is a min-heap by change time: it keeps the newest N tasks in
// one pass, without sorting every Task in the cache.
type taskHeap []taskRef

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h taskHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *taskHeap) Push(x any)        { *h = append(*h, x.(taskRef)) }
func (h *taskHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// serveState answers /api/state from a snapshot at most snapshotTTL old.
func (d *Dashboard) serveState(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if d.snapBody == nil || now.Sub(d.snapAt) >= snapshotTTL {
		s, err := d.snapshot(r.Context(), now)
		if err != nil {
			http.Error(w, "reading the cache: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		body, err := json.Marshal(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		d.snapAt, d.snapBody = now, body
	}
	writeJSON(w, d.snapBody)
}

// serveShares answers /api/shares: the sampled dominant shares.
func (d *Dashboard) serveShares(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(d.history.series(d.opts.Series, d.opts.SampleInterval))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, body)
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
