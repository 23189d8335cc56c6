package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Tasks of a Runtime with Config.RootFS run chrooted into it, while the
// agent and the supervisors stay outside. Whatever the agent checks on the
// task's behalf (its working dir, its executable, its user) must therefore
// be looked up the way the chrooted task will see it.

// openIn opens p as a process chrooted into root would: symlinks, even
// absolute ones and "..", are resolved inside root (openat2 with
// RESOLVE_IN_ROOT), so a host symlink such as /bin -> usr/bin or an
// absolute /etc/alternatives link never points into the agent container's
// own files. root "" opens p in the agent's filesystem.
func openIn(root, p string, flags int) (*os.File, error) {
	if root == "" {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return os.NewFile(uintptr(fd), p), nil
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT}
	fd, err := unix.Openat2(rfd, p, how)
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.6: resolve lexically; only symlinks that leave
		// the root are then followed wrongly.
		fd, err = unix.Open(filepath.Join(root, p), flags|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(root, p), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, p)), nil
}

// statIn stats p (following symlinks) as seen from inside root.
func statIn(root, p string) (*unix.Stat_t, error) {
	f, err := openIn(root, p, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	return &st, nil
}

// checkRootFS checks that rootFS is a directory and that workDir is the
// same directory at the same path inside it: sandbox paths are handed to
// the task (cwd, AGORA_SANDBOX) as the agent sees them, so they must mean
// the same inside the root.
func checkRootFS(rootFS, workDir string) error {
	if st, err := statIn("", rootFS); err != nil {
		return fmt.Errorf("runtime: RootFS: %w", err)
	} else if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("runtime: RootFS %s is not a directory", rootFS)
	}
	outer, err := statIn("", workDir)
	if err != nil {
		return fmt.Errorf("runtime: WorkDir: %w", err)
	}
	how := fmt.Sprintf("tasks run chrooted into RootFS %s and use sandbox paths as the agent sees them, "+
		"so WorkDir must be the same directory at the same path inside RootFS: mount the host directory at "+
		"%s into the agent container at that same path (a hostPath with mountPath equal to its path), "+
		"and the host's / at %s", rootFS, workDir, rootFS)
	inner, err := statIn(rootFS, workDir)
	if err != nil {
		return fmt.Errorf("runtime: WorkDir %s is not visible inside RootFS (%v); %s", workDir, err, how)
	}
	if inner.Dev != outer.Dev || inner.Ino != outer.Ino {
		return fmt.Errorf("runtime: WorkDir %s is a different directory inside RootFS (%s); %s",
			workDir, filepath.Join(rootFS, workDir), how)
	}
	return nil
}

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

// readColonFile calls fn with the fields of each entry of a passwd-style
// file inside root, until fn returns true.
func readColonFile(root, p string, fn func(fields []string) bool) error {
	f, err := openIn(root, p, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // group lines can be long
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if fn(strings.Split(line, ":")) {
			return nil
		}
	}
	return sc.Err()
}

// lookupPasswdIn finds a user of root's /etc/passwd by name, or, when
// byName finds nothing and name is numeric, by uid (as resolveUser does
// with os/user). found is false when there is no such user.
func lookupPasswdIn(root, name string) (e passwdEntry, found bool, err error) {
	uid, numErr := strconv.ParseUint(name, 10, 32)
	var byUID *passwdEntry
	err = readColonFile(root, "/etc/passwd", func(f []string) bool {
		if len(f) < 6 {
			return false
		}
		u, err1 := strconv.ParseUint(f[2], 10, 32)
		g, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return false
		}
		cur := passwdEntry{name: f[0], uid: uint32(u), gid: uint32(g), home: f[5]}
		if f[0] == name {
			e, found = cur, true
			return true
		}
		if numErr == nil && byUID == nil && u == uid {
			byUID = &cur
		}
		return false
	})
	if err == nil && !found && byUID != nil {
		e, found = *byUID, true
	}
	return e, found, err
}

// groupsIn returns the user's groups from root's /etc/group: the primary
// group first, then every group listing the user as a member (what
// getgrouplist and os/user report).
func groupsIn(root, user string, primary uint32) ([]uint32, error) {
	groups := []uint32{primary}
	err := readColonFile(root, "/etc/group", func(f []string) bool {
		if len(f) < 4 {
			return false
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || slices.Contains(groups, uint32(gid)) {
			return false
		}
		if slices.Contains(strings.Split(f[3], ","), user) {
			groups = append(groups, uint32(gid))
		}
		return false
	})
	if errors.Is(err, os.ErrNotExist) {
		err = nil // no /etc/group: the primary group only
	}
	return groups, err
}

// resolveUserIn resolves a user name (or numeric uid) from root's
// /etc/passwd and /etc/group: the task runs with the root's users, which
// need not match the agent container's.
func resolveUserIn(root, name string) (*taskUser, error) {
	e, found, err := lookupPasswdIn(root, name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	if !found {
		return nil, fmt.Errorf("user %q: not found in %s", name, filepath.Join(root, "etc/passwd"))
	}
	groups, err := groupsIn(root, e.name, e.gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: groups: %w", name, err)
	}
	return &taskUser{Name: name, SetUser: true, UID: e.uid, GID: e.gid, Groups: groups, Home: e.home}, nil
}

// inRootNote tells, in an error, that a path was looked up inside root.
func inRootNote(root string) string {
	if root == "" {
		return ""
	}
	return " inside RootFS " + root
}
