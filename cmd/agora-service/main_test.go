package main

import (
	"strings"
	"testing"
)

func TestCheckArgs(t *testing.T) {
	cases := []struct {
		args, instances, ports, maxPerValue int
		want                                string // "" for no error
	}{
		{1, 3, 0, 0, ""},
		{1, 0, 0, 0, ""},
		{0, 1, 0, 0, "give the COMMAND to keep running"},
		{1, -1, 0, 0, "--instances must not be negative, got -1"},
		{1, 1, -2, 0, "--ports must not be negative, got -2"},
		{1, 1, 0, -1, "--max-per-value must not be negative"},
	}
	for _, c := range cases {
		err := checkArgs(c.args, c.instances, c.ports, c.maxPerValue)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkArgs(%d, %d, %d, %d) = %v, want %q", c.args, c.instances, c.ports, c.maxPerValue, err, c.want)
		}
	}
}
