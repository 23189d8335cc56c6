package runtime

import (
	"fmt"
	"os"
)

// The supervisor and the v1 shim are the agent binary itself, re-executed
// with a hidden first argument: no second binary to ship or keep in step.
const (
	supervisorArg = "__agora-supervise"
	shimArg       = "__agora-shim"
)

// Main runs the runtime's helper processes. The agent's main() must call it
// first thing, before flag parsing:
//
//	if runtime.Main(os.Args) { return }
//
// It returns false when args are not a helper invocation. For a helper it
// does not return: the supervisor exits when its task is done, and the shim
// replaces itself with the task (handled is true only if it somehow returns).
func Main(args []string) (handled bool) {
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case supervisorArg:
		if len(args) != 3 {
			fmt.Fprintf(os.Stderr, "usage: %s %s CHECKPOINT_DIR\n", args[0], supervisorArg)
			os.Exit(2)
		}
		os.Exit(superviseMain(args[2]))
	case shimArg:
		os.Exit(shimMain(args[2:]))
	}
	return false
}
