package batch

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Summary is how every command ended, in the order given.
type Summary struct {
	Results []Result
}

// Failed counts the commands that did not finish successfully (including
// those that never ended).
func (s Summary) Failed() int {
	n := 0
	for _, r := range s.Results {
		if r.Failed() {
			n++
		}
	}
	return n
}

// ByState counts tasks per final state; "" counts tasks that never ended.
func (s Summary) ByState() map[agorav1.TaskState]int {
	m := map[agorav1.TaskState]int{}
	for _, r := range s.Results {
		m[r.State]++
	}
	return m
}

// Print writes the summary: tasks per state, exit codes, and each failure.
func (s Summary) Print(w io.Writer) {
	byState := s.ByState()
	states := make([]string, 0, len(byState))
	for st := range byState {
		states = append(states, string(st))
	}
	slices.Sort(states)
	parts := make([]string, 0, len(states))
	for _, st := range states {
		name := st
		if name == "" {
			name = "unfinished"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, byState[agorav1.TaskState(st)]))
	}
	fmt.Fprintf(w, "%d tasks: %s\n", len(s.Results), strings.Join(parts, ", "))

	codes := map[int32]int{}
	for _, r := range s.Results {
		if r.ExitCode != nil {
			codes[*r.ExitCode]++
		}
	}
	if len(codes) > 0 {
		keys := make([]int32, 0, len(codes))
		for c := range codes {
			keys = append(keys, c)
		}
		slices.Sort(keys)
		parts = parts[:0]
		for _, c := range keys {
			parts = append(parts, fmt.Sprintf("%d×%d", c, codes[c]))
		}
		fmt.Fprintf(w, "exit codes: %s\n", strings.Join(parts, ", "))
	}
	if s.Failed() == 0 {
		return
	}
	fmt.Fprintln(w, "failed:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range s.Results {
		if !r.Failed() {
			continue
		}
		code := "-"
		if r.ExitCode != nil {
			code = strconv.Itoa(int(*r.ExitCode))
		}
		state := string(r.State)
		if state == "" {
			state = "unfinished"
		}
		fmt.Fprintf(tw, "  %s\t%s\texit %s\t%s\t%q\n", r.Task, state, code, r.Reason, r.Command)
	}
	tw.Flush()
}
