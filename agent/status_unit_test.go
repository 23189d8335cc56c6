package agent

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestClipMessageCountsCharacters: messages are clipped to the CRD's 4096
// characters (not bytes), at a character boundary, with the cut marked.
func TestClipMessageCountsCharacters(t *testing.T) {
	fits := strings.Repeat("é", maxMessage) // 8192 bytes, 4096 characters
	if got := clipMessage(fits); got != fits {
		t.Errorf("a message of exactly %d characters was changed", maxMessage)
	}
	long := strings.Repeat("é", maxMessage+1)
	got := clipMessage(long)
	if n := utf8.RuneCountInString(got); n != maxMessage || !utf8.ValidString(got) || !strings.HasSuffix(got, "é…") {
		t.Errorf("clipped to %d characters (valid UTF-8: %v), ending %q; want %d ending with \"…\"",
			n, utf8.ValidString(got), got[len(got)-8:], maxMessage)
	}
}
