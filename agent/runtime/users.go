package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// taskUser is a resolved user to run a task as.
type taskUser struct {
	Name    string
	SetUser bool // false: run as the agent's own user
	UID     uint32
	GID     uint32
	Groups  []uint32
	Home    string
}

// resolveUser decides whom the task runs as: the user it names, if the
// policy allows it; else its tenant's own uid (Config.TaskUIDs); else
// Config.DefaultUser.
func (r *Runtime) resolveUser(spec *TaskSpec) (*taskUser, error) {
	name := spec.User
	if name != "" {
		if err := r.allowUser(name); err != nil {
			return nil, err
		}
	} else if r.uids != nil {
		return r.tenantUser(spec.Tenant)
	} else {
		name = r.cfg.DefaultUser
	}
	return r.lookupUser(name)
}

// tenantUser is the tenant's uid, with the same number as its gid and no
// supplementary groups: nothing on the host is shared with another
// tenant, not even a group. It has no name and no home (HOME becomes the
// sandbox).
func (r *Runtime) tenantUser(tenant string) (*taskUser, error) {
	if tenant == "" {
		return nil, errors.New("the task names no tenant, and tasks that name no user run as their tenant's own uid (Config.TaskUIDs)")
	}
	uid, err := r.uids.UID(tenant)
	if err != nil {
		return nil, err
	}
	return &taskUser{SetUser: true, UID: uid, GID: uid}, nil
}

// lookupUser resolves a user name ("" being the agent's own user). A name
// that is all digits is also accepted as a numeric uid.
func (r *Runtime) lookupUser(name string) (*taskUser, error) {
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

// allowUser decides whether a task may name a user. Without per-tenant
// uids, the default user may always be named (it is what the task would
// get anyway); with them, naming it would make tenants share it again, so
// the policy alone decides.
func (r *Runtime) allowUser(name string) error {
	if r.uids == nil && name == r.cfg.DefaultUser {
		return nil
	}
	if r.cfg.AllowedUsers != nil {
		if err := r.cfg.AllowedUsers(name); err != nil {
			return fmt.Errorf("user %q is not allowed: %w", name, err)
		}
		return nil
	}
	if r.uids != nil {
		return fmt.Errorf("user %q is not allowed: tasks run as their framework's own uid, and no policy allows naming a user (AllowedUsers)", name)
	}
	return fmt.Errorf("user %q is not allowed: only the default user %q may run tasks (no AllowedUsers policy configured)", name, r.cfg.DefaultUser)
}

// userNameRE is what the API accepts in Framework and Task spec.user.
var userNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)

// ParseAllowedUsers parses a comma-separated list of the users that tasks
// may name (the agent's --allowed-users) into a Config.AllowedUsers
// policy; "" gives nil, the default policy. There is no wildcard: each
// user a task may become, root included, is listed on purpose.
func ParseAllowedUsers(list string) (func(string) error, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	allowed := map[string]bool{}
	for _, part := range strings.Split(list, ",") {
		u := strings.TrimSpace(part)
		if u == "" {
			return nil, fmt.Errorf("%q has an empty name (a stray comma?)", list)
		}
		if len(u) > 32 || !userNameRE.MatchString(u) {
			return nil, fmt.Errorf("%q is not a user name as Task and Framework spec.user accept "+
				"(at most 32 lower-case letters, digits, '_' and '-', starting with a letter or '_')", u)
		}
		allowed[u] = true
	}
	names := make([]string, 0, len(allowed))
	for u := range allowed {
		names = append(names, u)
	}
	sort.Strings(names)
	return func(u string) error {
		if allowed[u] {
			return nil
		}
		return fmt.Errorf("not among the allowed users (%s)", strings.Join(names, ","))
	}, nil
}
