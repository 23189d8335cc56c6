package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// serviceIP is the apiserver's in-cluster address: the first IP of
// pkg/localcluster's service range (10.0.0.0/24). Start checks it against
// the "kubernetes" Service.
var serviceIP = net.IPv4(10, 0, 0, 1)

// nodeIP is the host's address on its default route: the kubelet's serving
// address, which the apiserver dials for logs and exec.
func nodeIP() (net.IP, error) {
	// UDP "connect" sends nothing; it only asks the kernel for a route.
	if c, err := net.Dial("udp4", "192.0.2.255:9"); err == nil {
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		if !ip.IsLoopback() {
			return ip, nil
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
				return n.IP, nil
			}
		}
	}
	return nil, errors.New("no usable IPv4 address for the node")
}

// checkNoOverlap refuses a pod range or service IP that the host already
// uses (an address on an interface or a route), so that the bridge cannot
// hijack the host's traffic.
func checkNoOverlap(podCIDR *net.IPNet, bridge string) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if i.Name == bridge {
			return fmt.Errorf("interface %s already exists (a previous run? try `localnode down`)", bridge)
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if podCIDR.Contains(n.IP) || n.Contains(podCIDR.IP) {
				return fmt.Errorf("pod CIDR %s overlaps %s on %s; choose another with --pod-cidr", podCIDR, n, i.Name)
			}
			if n.IP.Equal(serviceIP) {
				return fmt.Errorf("service IP %s is already on %s", serviceIP, i.Name)
			}
		}
	}
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return fmt.Errorf("ip route: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" || f[0] == "broadcast" || f[0] == "local" {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			continue
		}
		if podCIDR.Contains(n.IP) || n.Contains(podCIDR.IP) {
			return fmt.Errorf("pod CIDR %s overlaps the route %q; choose another with --pod-cidr", podCIDR, line)
		}
		if n.Contains(serviceIP) {
			return fmt.Errorf("service IP %s is routed by %q", serviceIP, line)
		}
	}
	return nil
}

func hasAddr(dev string, ip net.IP) bool {
	i, err := net.InterfaceByName(dev)
	if err != nil {
		return false
	}
	addrs, _ := i.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// serviceProxy makes the in-cluster apiserver address work without
// kube-proxy: pods reach <serviceIP>:443 through their bridge gateway, and
// this forwards to the apiserver, which pkg/localcluster binds to loopback.
// The serviceIP sits on lo (a /32) for the run.
type serviceProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
}

func startServiceProxy(target string) (*serviceProxy, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(serviceIP.String(), "443"))
	if err != nil {
		return nil, err
	}
	p := &serviceProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *serviceProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

func (p *serviceProxy) close() {
	if p == nil {
		return
	}
	p.ln.Close()
	p.wg.Wait()
}

// restoreIptables removes the rules and chains that appeared since before
// (iptables-save output): kubelet's KUBE-FIREWALL, KUBE-KUBELET-CANARY and
// KUBE-IPTABLES-HINT, and whatever CNI plugins left. Rules and chains that
// existed before are left alone.
func restoreIptables(cmd, before string) error {
	out, err := exec.Command(cmd + "-save").Output()
	if err != nil {
		return fmt.Errorf("%s-save: %w", cmd, err)
	}
	old, now := parseSave(before), parseSave(string(out))
	var errs []error
	for table, t := range now {
		o := old[table]
		for _, r := range t.rules {
			if o != nil && slices.Contains(o.rules, r) {
				continue
			}
			args := append([]string{"-t", table, "-D"}, splitRule(strings.TrimPrefix(r, "-A "))...)
			if err := run(cmd, args...); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range t.chains {
			if o != nil && slices.Contains(o.chains, c) {
				continue
			}
			if err := run(cmd, "-t", table, "-F", c); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range t.chains {
			if o != nil && slices.Contains(o.chains, c) {
				continue
			}
			if err := run(cmd, "-t", table, "-X", c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type saveTable struct{ chains, rules []string }

func parseSave(s string) map[string]*saveTable {
	tables := map[string]*saveTable{}
	var cur *saveTable
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			cur = &saveTable{}
			tables[line[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(line, ":"):
			// ":NAME POLICY [counters]": built-in chains have a policy,
			// user chains "-".
			if f := strings.Fields(line[1:]); len(f) > 1 && f[1] == "-" {
				cur.chains = append(cur.chains, f[0])
			}
		case strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return tables
}

// splitRule splits an iptables-save rule into arguments, honouring the
// double quotes it puts around comments.
func splitRule(s string) []string {
	var out []string
	var b strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && inQ && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case ch == '"':
			inQ, have = !inQ, true
		case ch == ' ' && !inQ:
			if have {
				out = append(out, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, b.String())
	}
	return out
}

// iptablesExtra lists rules and chains present now but not before.
func iptablesExtra(cmd, before string) []string {
	out, err := exec.Command(cmd + "-save").Output()
	if err != nil {
		return []string{err.Error()}
	}
	old, now := parseSave(before), parseSave(string(out))
	var extra []string
	for table, t := range now {
		o := old[table]
		if o == nil {
			o = &saveTable{}
		}
		for _, c := range t.chains {
			if !slices.Contains(o.chains, c) {
				extra = append(extra, table+" chain "+c)
			}
		}
		for _, r := range t.rules {
			if !slices.Contains(o.rules, r) {
				extra = append(extra, table+" "+r)
			}
		}
	}
	return extra
}

// nftTables lists "family name" of the nftables tables.
func nftTables() []string {
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil
	}
	var t []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			t = append(t, f[1]+" "+f[2])
		}
	}
	return t
}

// iptablesTables are the tables iptables-nft creates; only those are ever
// deleted, and only if they are new.
var iptablesTables = []string{"filter", "nat", "mangle", "raw", "security"}

func newNftTables(before []string) []string {
	var out []string
	for _, t := range nftTables() {
		f := strings.Fields(t)
		if slices.Contains(before, t) || (f[0] != "ip" && f[0] != "ip6") || !slices.Contains(iptablesTables, f[1]) {
			continue
		}
		out = append(out, t)
	}
	return out
}
