package resources

import (
	"math/bits"
	"strings"
)

// binary suffixes, largest first, for printing mem and disk.
var suffixes = []struct {
	name string
	unit int64
}{{"Ei", EiB}, {"Pi", PiB}, {"Ti", TiB}, {"Gi", GiB}, {"Mi", MiB}, {"Ki", KiB}}

// String returns the text form, e.g.
// "cpus:1.5;mem:512Mi;disk:1Gi;gpus:1;ports:[31000-31005,31010-31010]".
// Zero parts are omitted (empty resources print as ""). Mem and disk use
// the largest binary suffix that divides them exactly, else a "B" suffix
// (a bare number would mean MiB to Parse, as in Mesos).
func (r Resources) String() string {
	return string(r.AppendText(nil))
}

// AppendText appends the String form to b.
func (r Resources) AppendText(b []byte) []byte {
	start := len(b)
	sep := func() {
		if len(b) > start {
			b = append(b, ';')
		}
	}
	for k := Kind(0); k < NumScalars; k++ {
		if v := r.Scalars[k]; v != 0 {
			sep()
			b = append(b, k.String()...)
			b = append(b, ':')
			b = appendScalar(b, k, v)
		}
	}
	if len(r.Ports) > 0 {
		sep()
		b = append(b, "ports:"...)
		b = r.Ports.appendText(b)
	}
	return b
}

func formatScalar(k Kind, v int64) string { return string(appendScalar(nil, k, v)) }

func appendScalar(b []byte, k Kind, v int64) []byte {
	switch k {
	case CPUs:
		if v < 0 {
			b = append(b, '-')
			v = -v
		}
		b = appendInt(b, v/1000)
		if frac := v % 1000; frac != 0 {
			digits := []byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
			for digits[len(digits)-1] == '0' {
				digits = digits[:len(digits)-1]
			}
			b = append(b, digits...)
		}
		return b
	case Mem, Disk:
		if v != 0 {
			for _, s := range suffixes {
				if v%s.unit == 0 {
					return append(appendInt(b, v/s.unit), s.name...)
				}
			}
		}
		return append(appendInt(b, v), 'B')
	}
	return appendInt(b, v)
}

// Parse reads the text form String writes, and also Mesos' form such as
// "cpus:2;mem:1024;disk:2048;ports:[31000-32000]", where a bare number for
// mem or disk means MiB (Mesos' "MB"). Mem and disk accept the suffixes B,
// Ki, Mi, Gi, Ti, Pi, Ei and decimals that come to whole bytes ("1.5Gi");
// cpus allow at most 3 decimals; gpus must be whole. Parts are separated by
// ';' and may be surrounded by spaces; each kind may appear once. Errors are
// *ParseError values naming the bad part.
func Parse(s string) (Resources, error) {
	var r Resources
	var seen [NumScalars + 1]bool
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, ":")
		if !ok {
			return Resources{}, &ParseError{Part: part, Reason: `expected "name:value", e.g. "cpus:2"`}
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if strings.ContainsAny(name, "()") {
			return Resources{}, &ParseError{Part: part, Reason: "reservations such as cpus(role) are not part of the text form; reserve through the agent's reservations instead"}
		}
		idx := -1
		if name == "ports" {
			idx = int(NumScalars)
		}
		for k := Kind(0); k < NumScalars; k++ {
			if name == k.String() {
				idx = int(k)
			}
		}
		if idx < 0 {
			return Resources{}, &ParseError{Part: part, Reason: `unknown resource; use cpus, mem, disk, gpus or ports`}
		}
		if seen[idx] {
			return Resources{}, &ParseError{Part: part, Reason: "resource given twice; give each resource once"}
		}
		seen[idx] = true
		if idx == int(NumScalars) {
			p, reason := parseRanges(value)
			if reason != "" {
				return Resources{}, &ParseError{Part: part, Reason: reason}
			}
			r.Ports = p
			continue
		}
		v, reason := parseScalar(Kind(idx), value)
		if reason != "" {
			return Resources{}, &ParseError{Part: part, Reason: reason}
		}
		r.Scalars[idx] = v
	}
	return r, nil
}

// MustParse is Parse for literals known to be valid (tests, defaults); it
// panics on error.
func MustParse(s string) Resources {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// parseScalar returns the value in the kind's unit, or a reason for failure.
func parseScalar(k Kind, s string) (int64, string) {
	num, suffix := splitNumber(s)
	mant, scale, reason := parseDecimal(num)
	if reason != "" {
		return 0, reason
	}
	var unit int64
	switch k {
	case CPUs:
		if suffix != "" {
			return 0, "cpus take a plain number such as 1.5"
		}
		if scale > 3 {
			return 0, "cpus allow at most 3 decimal places (millicpus)"
		}
		unit = CPU
	case GPUs:
		if suffix != "" {
			return 0, "gpus take a whole number such as 1"
		}
		unit = 1
	default:
		switch suffix {
		case "":
			unit = MiB // Mesos' convention: mem and disk in MB (2^20 bytes)
		case "B":
			unit = Byte
		default:
			for _, s := range suffixes {
				if suffix == s.name {
					unit = s.unit
				}
			}
			if unit == 0 {
				return 0, "unknown unit " + suffix + "; use B, Ki, Mi, Gi, Ti, Pi or Ei (a bare number means Mi)"
			}
		}
	}
	// value = mant * unit / 10^scale, which must be a whole number.
	hi, lo := bits.Mul64(mant, uint64(unit))
	div := uint64(1)
	for range scale {
		div *= 10
	}
	if hi >= div {
		return 0, "value is too large"
	}
	q, rem := bits.Div64(hi, lo, div)
	if rem != 0 {
		if k == GPUs {
			return 0, "gpus must be whole"
		}
		return 0, "value is not a whole number of " + map[Kind]string{CPUs: "millicpus", Mem: "bytes", Disk: "bytes"}[k]
	}
	if q > uint64(MaxScalar) {
		return 0, "value is too large"
	}
	return int64(q), ""
}

// splitNumber splits "1.5Gi" into "1.5" and "Gi".
func splitNumber(s string) (string, string) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// parseDecimal reads an unsigned decimal as mantissa and number of
// fractional digits ("1.50" -> 150, 2), dropping trailing zeros.
func parseDecimal(s string) (mant uint64, scale int, reason string) {
	if s == "" {
		return 0, 0, "expected a non-negative number"
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return 0, 0, "expected a number such as 2 or 1.5"
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 18 {
		return 0, 0, "too many decimal places"
	}
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return 0, 0, "expected a non-negative number such as 2 or 1.5"
		}
		if mant > (1<<63)/10 {
			return 0, 0, "value is too large"
		}
		mant = mant*10 + uint64(c-'0')
	}
	return mant, len(frac), ""
}

// parseRanges reads "[31000-31005,31010-31010]"; a single value "[80]" is
// also accepted.
func parseRanges(s string) (Ranges, string) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, "ports must look like [31000-32000,33000-33010]"
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	if body == "" {
		return nil, ""
	}
	var rs []Range
	for item := range strings.SplitSeq(body, ",") {
		b, e, isRange := strings.Cut(strings.TrimSpace(item), "-")
		lo, ok1 := parseU32(strings.TrimSpace(b))
		hi, ok2 := lo, true
		if isRange {
			hi, ok2 = parseU32(strings.TrimSpace(e))
		}
		if !ok1 || !ok2 {
			return nil, "bad range " + strings.TrimSpace(item) + "; expected begin-end with whole numbers below 2^32"
		}
		if lo > hi {
			return nil, "bad range " + strings.TrimSpace(item) + "; begin is after end"
		}
		rs = append(rs, Range{lo, hi})
	}
	out, _ := NewRanges(rs...) // cannot fail: every range was checked above
	return out, ""
}

func parseU32(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}
