// Package kubeconn gives API clients connections of their own.
package kubeconn

import (
	"net"
	"time"

	"k8s.io/client-go/rest"
)

// Own returns a copy of cfg whose clients get a connection of their own.
// client-go shares one transport, and so one HTTP/2 connection, between
// configs that look alike; every request and watch of a process then
// queues on one TCP stream. Processes that stand in for many (simulated
// agents, a benchmark's frameworks) use Own to keep their parts apart, as
// separate processes would be. A dial function of its own is what makes
// client-go build a new transport.
func Own(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	c.Dial = d.DialContext
	return c
}
