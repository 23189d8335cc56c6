package localcluster

import "time"

// Child is a process started by StartChild: its output goes to a log file,
// it lives in its own process group and dies with its parent. `agora local`
// runs the master, agents and demo frameworks as children.
type Child struct{ p *process }

// StartChild runs bin with args, logging to logDir/<name>.log.
func StartChild(name, bin string, args []string, logDir string) (*Child, error) {
	p, err := startProcess(name, bin, args, logDir)
	if err != nil {
		return nil, err
	}
	return &Child{p: p}, nil
}

// Stop sends SIGTERM to the child's process group, then SIGKILL after
// timeout, and returns once the group is gone.
func (c *Child) Stop(timeout time.Duration) { c.p.stop(timeout) }

// Done is closed when the child has exited.
func (c *Child) Done() <-chan struct{} { return c.p.done }

// Err describes why the child exited, with the tail of its log.
func (c *Child) Err() error { return c.p.exitError() }

// LogPath is the child's log file.
func (c *Child) LogPath() string { return c.p.LogPath }
