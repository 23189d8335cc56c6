package runtime

import (
	"fmt"
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
