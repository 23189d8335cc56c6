package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/sys/fs/cgroup`:       "/sys/fs/cgroup",
		`/mnt/my\040freezer`:   "/mnt/my freezer",
		`/a\011b\134c`:         "/a\tb\\c",
		`/not\09octal`:         `/not\09octal`,
		`/short\04`:            `/short\04`,
		`/twice\040\040spaced`: "/twice  spaced",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
