// Package runtime runs Agora tasks on one node: each task in its own cgroup,
// parented by a small supervisor process that outlives the agent and
// checkpoints the task's exit status, so an agent restart can reattach.
//
// The package is independent of the Agora API types; the agent controller
// maps these plain types onto Task objects.
//
// # Processes
//
// The agent binary is re-executed for two helper roles, selected by a
// hidden first argument; the agent's main must start with
//
//	if runtime.Main(os.Args) { return }
//
// The roles:
//
//   - The supervisor (one per task), started with Setsid in its own cgroup
//     <root>/<agent>/supervisor/<task> (16 MiB, 0.05 cpu, 64 pids). It starts
//     the task, records pids and start times in the checkpoint, waits for
//     the task, kills what the task left in its cgroup, and records the exit
//     status (code, signal, OOM, usage). It is not tied to the agent: when
//     the agent dies, the supervisor is re-parented and carries on.
//   - The shim (cgroup v1 only), which joins the task's cgroups, chroots
//     into Config.RootFS if set, drops to the task's user and execs the
//     task, so the task's first instruction runs in its cgroup (and root).
//     On cgroup v2 the task is cloned straight into its cgroup
//     (CLONE_INTO_CGROUP) and chrooted by the clone instead.
//
// # Files
//
//	<WorkDir>/<agent>/                 0711: tasks pass through, cannot list
//	<WorkDir>/<agent>/<task>/          sandbox (0700, the task's user): stdout, stderr, working dir
//	<CheckpointDir>/<agent>/<task>/    launch.json, task.json, kill.json, supervisor.log
//	<CheckpointDir>/.task-uids/        each tenant's uid (Config.TaskUIDs), shared by the agents of that dir
//	<cgroup mount>/<root>/<agent>/task/<task>        the task's cgroup
//	<cgroup mount>/<root>/<agent>/supervisor/<task>  its supervisor's
//
// On cgroup v1 these exist in every mounted hierarchy: the controllers the
// runtime limits, the others it finds mounted (cpuset, devices, blkio...)
// and the named ones (name=systemd...), the latter two for membership only.
// No supervisor or task may stay in the agent container's cgroup of any
// hierarchy: the kubelet kills whatever it finds in any hierarchy of a
// deleted pod's cgroup.
//
// # Users
//
// A task runs as the user it names, if Config.AllowedUsers allows it.
// Otherwise, with Config.TaskUIDs, it runs as its tenant's own uid (the
// agent's tenant is the Task's namespace/framework), with that number as
// gid and no supplementary groups: the kernel then refuses a task of one
// tenant to signal (EPERM), ptrace or read the /proc files of another's,
// and the sandboxes (0700, owned by that uid) keep their files apart.
// Without TaskUIDs, tasks run as Config.DefaultUser. Tasks and their
// command health checks run with no_new_privs set, so that the user they
// run as is all they get: setuid and file-capability programs on the node
// give them nothing more.
//
// # Running in a DaemonSet
//
// The agent needs the host's view of processes and cgroups: hostPID (pids
// in checkpoints must stay meaningful, and a private pid namespace would
// take every supervisor down with the agent container), the host's
// /sys/fs/cgroup mounted read-write (New refuses a mount that shows only
// a sub-tree), the host cgroup namespace on v2, and CheckpointDir and
// WorkDir on hostPaths. Tasks run in the filesystem the agent sees unless
// Config.RootFS is set: the agent's --host-root flag (/host in the shipped
// DaemonSet, a hostPath of the host's / with HostToContainer propagation)
// is passed as RootFS, and the tasks then run chrooted into the host's
// root, with users from the host's /etc/passwd and /etc/group. The work
// dir must then be a hostPath mounted at its own path (/var/lib/agora on
// both sides), since sandbox paths are handed to tasks as the agent sees
// them; New refuses a WorkDir that is not the same directory inside
// RootFS. The supervisors (the agent binary) stay outside the root.
package runtime
