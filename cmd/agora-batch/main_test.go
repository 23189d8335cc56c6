package main

import (
	"strings"
	"testing"
)

func TestCheckArgs(t *testing.T) {
	cases := []struct {
		commands, repeat, retries int
		want                      string // "" for no error
	}{
		{1, 1, 2, ""},
		{0, 1, 2, "give at least one COMMAND"},
		{1, 0, 2, "--repeat must be 1 or more, got 0"},
		{1, 1, -1, "--retries must not be negative, got -1"},
	}
	for _, c := range cases {
		err := checkArgs(c.commands, c.repeat, c.retries)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkArgs(%d, %d, %d) = %v, want %q", c.commands, c.repeat, c.retries, err, c.want)
		}
	}
}
