package resources

import (
	"errors"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   Resources
		want string
	}{
		{Resources{}, ""},
		{Scalars(1500, 512*MiB, GiB, 1).WithPorts(rs(31000, 31005, 31010, 31010)), "cpus:1.5;mem:512Mi;disk:1Gi;gpus:1;ports:[31000-31005,31010-31010]"},
		{Scalars(1, 0, 0, 0), "cpus:0.001"},
		{Scalars(10, 0, 0, 0), "cpus:0.01"},
		{Scalars(2000, 0, 0, 0), "cpus:2"},
		{Scalars(0, 1536, 0, 0), "mem:1536B"},
		{Scalars(0, 1, 0, 0), "mem:1B"},
		{Scalars(0, 3*KiB, 5*TiB, 0), "mem:3Ki;disk:5Ti"},
		{Scalars(0, 2*EiB, PiB, 0), "mem:2Ei;disk:1Pi"},
		{Scalars(0, 1536*MiB, 0, 0), "mem:1536Mi"},
		{Resources{Ports: rs(80, 80)}, "ports:[80-80]"},
	}
	for _, tc := range tests {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		back, err := Parse(tc.want)
		if err != nil || !back.Equal(tc.in) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.want, back, err, tc.in)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Resources
	}{
		{"", Resources{}},
		{" ; ", Resources{}},
		{"cpus:2;mem:1024;ports:[31000-32000]", Scalars(2000, GiB, 0, 0).WithPorts(rs(31000, 32000))},
		{"cpus:24;mem:4096;disk:4096;ports:[31000-32000]", Scalars(24000, 4*GiB, 4*GiB, 0).WithPorts(rs(31000, 32000))},
		{"cpus:0.125", Scalars(125, 0, 0, 0)},
		{"cpus:1.500", Scalars(1500, 0, 0, 0)},
		{"mem:0.5", Scalars(0, 512*KiB, 0, 0)},
		{"mem:1.5Gi", Scalars(0, 1536*MiB, 0, 0)},
		{"mem:100B", Scalars(0, 100, 0, 0)},
		{"disk:2Ti", Scalars(0, 0, 2*TiB, 0)},
		{"gpus:2", Scalars(0, 0, 0, 2)},
		{"gpus:2.0", Scalars(0, 0, 0, 2)},
		{" cpus : 1 ; mem : 1Gi ; ", Scalars(1000, GiB, 0, 0)},
		{"ports:[]", Resources{}},
		{"ports:[ 10-12 , 1-3, 4-4, 80 ]", Resources{Ports: rs(1, 4, 10, 12, 80, 80)}},
		{"ports:[0-4294967295]", Resources{Ports: rs(0, 1<<32-1)}},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, part, reason string }{
		{"cpus", "cpus", "name:value"},
		{"cpu:1", "cpu:1", "unknown resource"},
		{"cpus:1.0001", "cpus:1.0001", "at most 3 decimal places"},
		{"cpus:-1", "cpus:-1", "non-negative"},
		{"cpus:1Gi", "cpus:1Gi", "plain number"},
		{"cpus:abc", "cpus:abc", "non-negative number"},
		{"cpus:1..2", "cpus:1..2", "number"},
		{"cpus:.5", "cpus:.5", "number"},
		{"cpus:5.", "cpus:5.", "number"},
		{"gpus:1.5", "gpus:1.5", "gpus must be whole"},
		{"gpus:1Ki", "gpus:1Ki", "whole number"},
		{"mem:1Xi", "mem:1Xi", "unknown unit"},
		{"mem:0.3B", "mem:0.3B", "whole number of bytes"},
		{"mem:99999999999999999999", "mem:99999999999999999999", "too large"},
		{"mem:4Ei", "mem:4Ei", "too large"},
		{"cpus:1;cpus:2", "cpus:2", "given twice"},
		{"cpus(web):1", "cpus(web):1", "reservations"},
		{"ports:31000-32000", "ports:31000-32000", "ports must look like"},
		{"ports:[5-1]", "ports:[5-1]", "begin is after end"},
		{"ports:[1-x]", "ports:[1-x]", "bad range"},
		{"ports:[4294967296]", "ports:[4294967296]", "below 2^32"},
		{"cpus:1;ports:[1-2];ports:[3-4]", "ports:[3-4]", "given twice"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) err = %v, want *ParseError", tc.in, err)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) err does not match ErrInvalid", tc.in)
		}
		if pe.Part != tc.part || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("Parse(%q) = part %q reason %q; want part %q reason containing %q", tc.in, pe.Part, pe.Reason, tc.part, tc.reason)
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic on bad input")
		}
	}()
	MustParse("bogus")
}
