package resources

import (
	"strings"
	"testing"
)

func TestParseKind(t *testing.T) {
	for k := range NumScalars {
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	if _, err := ParseKind("dsik"); err == nil || !strings.Contains(err.Error(), "cpus, mem, disk, gpus") {
		t.Errorf("ParseKind(dsik) error %v, want one naming the valid kinds", err)
	}
}
