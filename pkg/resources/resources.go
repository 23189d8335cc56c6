package resources

// Resources is an amount of every scalar kind plus a set of ports.
// The zero value is empty and ready to use.
type Resources struct {
	// Scalars holds millicpus, mem bytes, disk bytes and whole GPUs,
	// indexed by Kind.
	Scalars [NumScalars]int64
	// Ports is canonical (see Ranges).
	Ports Ranges
}

// Scalars returns resources holding only the given scalar amounts.
func Scalars(millicpus, memBytes, diskBytes, gpus int64) Resources {
	return Resources{Scalars: [NumScalars]int64{millicpus, memBytes, diskBytes, gpus}}
}

// Get returns the amount of scalar kind k.
func (r Resources) Get(k Kind) int64 { return r.Scalars[k] }

// With returns r with scalar kind k set to v.
func (r Resources) With(k Kind, v int64) Resources {
	r.Scalars[k] = v
	return r
}

// WithPorts returns r with its ports replaced by ports (which must be
// canonical; see NewRanges).
func (r Resources) WithPorts(ports Ranges) Resources {
	r.Ports = ports
	return r
}

// ScalarsOnly returns r without its ports.
func (r Resources) ScalarsOnly() Resources {
	r.Ports = nil
	return r
}

// Validate reports whether r is well formed: every scalar in [0, MaxScalar]
// and the ports canonical. Values built by Parse always are.
func (r Resources) Validate() error {
	for k, v := range r.Scalars {
		if v < 0 || v > MaxScalar {
			return &ScalarError{Kind: Kind(k), Value: v}
		}
	}
	return r.Ports.Validate()
}

// Add returns the sum: scalars added, ports united.
func (r Resources) Add(o Resources) Resources {
	for k := range r.Scalars {
		r.Scalars[k] += o.Scalars[k]
	}
	r.Ports = r.Ports.Add(o.Ports)
	return r
}

// Subtract returns r minus o. If o is not contained in r it returns the
// zero value and an *InsufficientError (matching ErrInsufficient) naming
// what is missing, so the result is never negative.
func (r Resources) Subtract(o Resources) (Resources, error) {
	for k := range r.Scalars {
		if o.Scalars[k] > r.Scalars[k] {
			return Resources{}, &InsufficientError{Kind: Kind(k), Have: r.Scalars[k], Need: o.Scalars[k]}
		}
	}
	if !r.Ports.Contains(o.Ports) {
		return Resources{}, &InsufficientError{Kind: -1, Missing: o.Ports.Subtract(r.Ports)}
	}
	for k := range r.Scalars {
		r.Scalars[k] -= o.Scalars[k]
	}
	r.Ports = r.Ports.Subtract(o.Ports)
	return r, nil
}

// Contains reports whether o is contained in r: every scalar of r is at
// least that of o and every port of o is in r. It does not allocate.
func (r Resources) Contains(o Resources) bool {
	for k := range r.Scalars {
		if o.Scalars[k] > r.Scalars[k] {
			return false
		}
	}
	return r.Ports.Contains(o.Ports)
}

// Fits reports whether o fits in r. It is the same test as r.Contains(o),
// kept under the name that reads better at call sites asking "does this
// task fit in that offer?".
func (r Resources) Fits(o Resources) bool { return r.Contains(o) }

// ScalarsContain is Contains ignoring ports.
func (r Resources) ScalarsContain(o Resources) bool {
	for k := range r.Scalars {
		if o.Scalars[k] > r.Scalars[k] {
			return false
		}
	}
	return true
}

// IsEmpty reports whether r holds nothing.
func (r Resources) IsEmpty() bool {
	return r.Scalars == [NumScalars]int64{} && len(r.Ports) == 0
}

// Equal reports whether r and o hold the same amounts and ports.
func (r Resources) Equal(o Resources) bool { return r.EqualTo(&o) }

// EqualTo is Equal without copying r first: a copy of a value kept in a
// larger struct loads all of it (the ports' capacity too), which costs a
// cache miss on a line the comparison does not need.
func (r *Resources) EqualTo(o *Resources) bool {
	return r.Scalars == o.Scalars && r.Ports.Equal(o.Ports)
}

// Min returns, per scalar, the smaller amount, and the common ports.
func (r Resources) Min(o Resources) Resources {
	for k := range r.Scalars {
		r.Scalars[k] = min(r.Scalars[k], o.Scalars[k])
	}
	r.Ports = r.Ports.Intersect(o.Ports)
	return r
}
