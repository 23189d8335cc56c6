package runtime

import (
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// reservedEnv reports whether the runtime owns the variable: frameworks
// rely on these meaning what the agent says, so a task may not set them.
func reservedEnv(k string) bool {
	if strings.HasPrefix(k, "AGORA_") || k == "MESOS_SANDBOX" || k == "PORTS" {
		return true
	}
	if n, ok := strings.CutPrefix(k, "PORT"); ok && n != "" {
		_, err := strconv.ParseUint(n, 10, 32)
		return err == nil
	}
	return false
}

func validateEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env name %q is invalid", k)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("env %s contains a NUL byte", k)
		}
		if reservedEnv(k) {
			return fmt.Errorf("env %s is reserved: the agent sets AGORA_*, MESOS_SANDBOX, PORTS and PORT<n>", k)
		}
	}
	return nil
}

// buildEnv returns the task's environment: defaults, then the task's own
// variables, then the runtime's, which the task cannot override.
func buildEnv(spec *TaskSpec, sandbox string, home string) []string {
	m := map[string]string{"PATH": defaultPath, "HOME": home}
	if home == "" {
		m["HOME"] = sandbox
	}
	for k, v := range spec.Env {
		m[k] = v
	}
	m["AGORA_TASK_ID"] = spec.ID
	m["AGORA_TASK_NAME"] = spec.Name
	m["AGORA_SANDBOX"] = sandbox
	m["MESOS_SANDBOX"] = sandbox
	ports := make([]string, len(spec.Ports))
	for i, p := range spec.Ports {
		ports[i] = strconv.FormatUint(uint64(p), 10)
		m["PORT"+strconv.Itoa(i)] = ports[i]
	}
	if len(ports) > 0 {
		m["PORTS"] = strings.Join(ports, ",")
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// envLookup returns the value of k in env (the last one wins, as execve).
func envLookup(env []string, k string) string {
	v := ""
	for _, kv := range env {
		if val, ok := strings.CutPrefix(kv, k+"="); ok {
			v = val
		}
	}
	return v
}

// taskUser is a resolved user to run a task as.
type taskUser struct {
	Name    string
	SetUser bool // false: run as the agent's own user
	UID     uint32
	GID     uint32
	Groups  []uint32
	Home    string
}

// resolveUser applies the configured policy, then looks the user up. A
// name that is all digits is also accepted as a numeric uid.
func (r *Runtime) resolveUser(name string) (*taskUser, error) {
	if name == "" {
		name = r.cfg.DefaultUser
	}
	if err := r.allowUser(name); err != nil {
		return nil, err
	}
	if name == "" {
		if r.cfg.RootFS != "" {
			// The agent's HOME is the container's; the root's passwd may
			// know the agent's uid, else HOME becomes the sandbox.
			e, found, _ := lookupPasswdIn(r.cfg.RootFS, strconv.Itoa(os.Getuid()))
			if !found || e.uid != uint32(os.Getuid()) {
				e.home = ""
			}
			return &taskUser{Home: e.home}, nil
		}
		return &taskUser{Home: os.Getenv("HOME")}, nil
	}
	if r.cfg.RootFS != "" {
		return resolveUserIn(r.cfg.RootFS, name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid/gid (%s:%s)", name, u.Uid, u.Gid)
	}
	tu := &taskUser{Name: name, SetUser: true, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				tu.Groups = append(tu.Groups, uint32(n))
			}
		}
	}
	return tu, nil
}

// allowUser applies Config.AllowedUsers; without a policy only the default
// user (the empty name being the agent's own user) is allowed.
func (r *Runtime) allowUser(name string) error {
	if r.cfg.AllowedUsers != nil {
		if err := r.cfg.AllowedUsers(name); err != nil {
			return fmt.Errorf("user %q is not allowed: %w", name, err)
		}
		return nil
	}
	if name != r.cfg.DefaultUser {
		return fmt.Errorf("user %q is not allowed: only the default user %q may run tasks (no AllowedUsers policy configured)", name, r.cfg.DefaultUser)
	}
	return nil
}
