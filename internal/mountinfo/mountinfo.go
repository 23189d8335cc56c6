// Package mountinfo reads fields of /proc/self/mountinfo. It is apart from
// agent/runtime, which uses it too, so that hack/localnode can share it
// without taking on the runtime's cgroup and systemd dependencies.
package mountinfo

import "strings"

// Unescape undoes mountinfo's octal escapes (\040 for space, ...) in a path
// field.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, d := range s[i+1 : i+4] {
				if d < '0' || d > '7' {
					ok = false
					break
				}
				v = v*8 + byte(d-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
