// Command agora is Agora's command-line tool: run Agora locally, run tasks,
// watch shares and read task logs. Installed as kubectl-agora it is also a
// kubectl plugin.
package main

import (
	"os"

	"github.com/agora-sched/agora/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
