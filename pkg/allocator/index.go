package allocator

import "hash/maphash"

// agentIndex finds agents by name. Every Recover looks its agent up, in no
// particular order, so at 10,000+ agents each lookup is a cache miss on the
// index before the one on the agent. A Go map of 20,000 strings reads the
// group's control word and then the slot (two lines in different places);
// this table keeps one 8-byte entry per slot, a 32-bit hash tag and the
// agent's position, so a lookup reads one line of the table and compares
// the name only when the tag matches. Linear probing at a load of at most
// one half; deletion shifts entries back, so there are no tombstones.
type agentIndex struct {
	seed  maphash.Seed
	slots []uint64 // 0: empty; else tag<<32 | (position in agentList + 1)
	n     int
}

func newAgentIndex() agentIndex {
	return agentIndex{seed: maphash.MakeSeed(), slots: make([]uint64, 16)}
}

func (x *agentIndex) hash(name string) (tag uint64, home int) {
	h := maphash.String(x.seed, name)
	return h >> 32 << 32, int(h & uint64(len(x.slots)-1))
}

// get returns the agent called name, or nil.
func (x *agentIndex) get(name string, list []*agent) *agent {
	tag, i := x.hash(name)
	for {
		e := x.slots[i]
		if e == 0 {
			return nil
		}
		if e&^0xffffffff == tag {
			if ag := list[uint32(e)-1]; ag.name == name {
				return ag
			}
		}
		i = (i + 1) & (len(x.slots) - 1)
	}
}

// find returns the slot holding name (-1 if absent).
func (x *agentIndex) find(name string, list []*agent) int {
	tag, i := x.hash(name)
	for {
		e := x.slots[i]
		if e == 0 {
			return -1
		}
		if e&^0xffffffff == tag && list[uint32(e)-1].name == name {
			return i
		}
		i = (i + 1) & (len(x.slots) - 1)
	}
}

// put adds name (absent) at position pos of list.
func (x *agentIndex) put(name string, pos int, list []*agent) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow(list)
	}
	tag, i := x.hash(name)
	for x.slots[i] != 0 {
		i = (i + 1) & (len(x.slots) - 1)
	}
	x.slots[i] = tag | uint64(pos+1)
	x.n++
}

func (x *agentIndex) grow(list []*agent) {
	old := x.slots
	x.slots = make([]uint64, 2*len(old))
	for _, e := range old {
		if e == 0 {
			continue
		}
		_, i := x.hash(list[uint32(e)-1].name)
		for x.slots[i] != 0 {
			i = (i + 1) & (len(x.slots) - 1)
		}
		x.slots[i] = e
	}
}

// move records that name (present) is now at position pos.
func (x *agentIndex) move(name string, pos int, list []*agent) {
	i := x.find(name, list)
	x.slots[i] = x.slots[i]&^0xffffffff | uint64(pos+1)
}

// remove deletes name (present), shifting back the entries of its probe
// run that could sit in its slot.
func (x *agentIndex) remove(name string, list []*agent) {
	mask := len(x.slots) - 1
	i := x.find(name, list)
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		_, home := x.hash(list[uint32(x.slots[j])-1].name)
		// The entry at j may move to i if i lies on its probe path,
		// i.e. cyclically in [home, j).
		if (j-home)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}
