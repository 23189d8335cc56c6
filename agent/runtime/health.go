package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

const (
	defaultHealthInterval = 10 * time.Second
	defaultHealthTimeout  = 5 * time.Second
	defaultHealthFailures = 3
)

func validateHealthCheck(h *HealthCheck) error {
	if h == nil {
		return nil
	}
	n := 0
	if h.Command != nil {
		n++
		if err := validateCommand(h.Command); err != nil {
			return err
		}
	}
	if h.HTTP != nil {
		n++
		if h.HTTP.Port == 0 || h.HTTP.Port > 65535 {
			return fmt.Errorf("http port %d is out of range", h.HTTP.Port)
		}
	}
	if h.TCP != nil {
		n++
		if h.TCP.Port == 0 || h.TCP.Port > 65535 {
			return fmt.Errorf("tcp port %d is out of range", h.TCP.Port)
		}
	}
	if n != 1 {
		return errors.New("set exactly one of Command, HTTP and TCP")
	}
	if h.Interval < 0 || h.Timeout < 0 || h.GracePeriod < 0 || h.ConsecutiveFailures < 0 {
		return errors.New("durations and failure count must not be negative")
	}
	return nil
}

// startHealth runs the task's health checks, if any, until it ends.
// Health is reported on changes only: first success, first counted
// failure, recovery. ConsecutiveFailures counted failures kill the task.
func (r *Runtime) startHealth(t *task) {
	hc := t.launch.HealthCheck
	if hc == nil {
		return
	}
	h := *hc
	if h.Interval == 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = defaultHealthTimeout
	}
	if h.ConsecutiveFailures == 0 {
		h.ConsecutiveFailures = defaultHealthFailures
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	t.stopHealth = cancel
	r.mu.Unlock()
	go func() {
		defer cancel()
		var healthy *bool
		failures := 0
		ticker := time.NewTicker(h.Interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.stop:
				return
			case <-ticker.C:
			}
			err := r.probe(ctx, t, &h)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				failures = 0
				if healthy == nil || !*healthy {
					healthy = ptr(true)
					r.events.Push(Event{Type: EventHealth, TaskID: t.id, Time: time.Now(), Healthy: true})
				}
				continue
			}
			// As in Mesos, failures in the grace period count only once
			// the task has been healthy.
			if healthy == nil && time.Since(t.startedAt) < h.GracePeriod {
				continue
			}
			failures++
			if healthy == nil || *healthy {
				healthy = ptr(false)
				r.events.Push(Event{Type: EventHealth, TaskID: t.id, Time: time.Now(), Healthy: false, Message: err.Error()})
			}
			if failures >= h.ConsecutiveFailures {
				r.cfg.Logf("task %s: %d consecutive failed health checks, killing: %v", t.id, failures, err)
				if kerr := r.startKill(t, t.launch.KillGracePeriod, ReasonHealthCheck); kerr != nil {
					r.cfg.Logf("task %s: kill: %v", t.id, kerr)
				}
				return
			}
		}
	}()
}

func ptr[T any](v T) *T { return &v }

// probe runs one check; nil means healthy.
func (r *Runtime) probe(ctx context.Context, t *task, h *HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	switch {
	case h.TCP != nil:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostPort(h.TCP.Host, h.TCP.Port))
		if err != nil {
			return err
		}
		return c.Close()
	case h.HTTP != nil:
		url := "http://" + hostPort(h.HTTP.Host, h.HTTP.Port) + "/"
		if h.HTTP.Path != "" {
			url = "http://" + hostPort(h.HTTP.Host, h.HTTP.Port) + "/" + trimSlash(h.HTTP.Path)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	default:
		// Like the task: same user, env and working dir, and inside the
		// task's cgroup, so the check sees what the task sees and is
		// accounted to it.
		cmd, err := taskCommand(t.launch, h.Command.argv())
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				return fmt.Errorf("health command: %w", err)
			}
			return nil
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-waited
			return fmt.Errorf("health command timed out after %s", h.Timeout)
		}
	}
}

func hostPort(host string, port uint32) string {
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}
