package agent

// Version of the agent, set at build time:
//
//	go build -ldflags "-X github.com/agora-sched/agora/agent.Version=v0.1.0" ./cmd/agora-agent
var Version = "dev"
