package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, fixed at 100 on Linux for /proc times.
const clockTicks = 100

// procStartTicks returns field 22 of /proc/<pid>/stat, the process start
// time in clock ticks since boot. Together with the pid it identifies a
// process across pid reuse.
func procStartTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm (field 2) may contain spaces and parentheses: parse after the
	// last ')'. Field 3 (state) is then the first.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	const startTimeIdx = 22 - 3
	if len(fields) <= startTimeIdx {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return strconv.ParseUint(fields[startTimeIdx], 10, 64)
}

// procState returns field 3 of /proc/<pid>/stat ('Z' for a zombie).
func procState(pid int) byte {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0
	}
	return data[i+2]
}

// sameProcess reports whether pid still is the process that started at
// startTicks, and not a zombie.
func sameProcess(pid int, startTicks uint64) bool {
	if pid <= 0 {
		return false
	}
	t, err := procStartTicks(pid)
	return err == nil && t == startTicks && procState(pid) != 'Z'
}

var (
	bootOnce sync.Once
	bootID   string
	bootTime time.Time
	bootErr  error
)

// bootInfo returns the kernel's boot id (it changes on every boot) and the
// boot time (btime of /proc/stat).
func bootInfo() (string, time.Time, error) {
	bootOnce.Do(func() {
		id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err != nil {
			bootErr = err
			return
		}
		bootID = strings.TrimSpace(string(id))
		stat, err := os.ReadFile("/proc/stat")
		if err != nil {
			bootErr = err
			return
		}
		for _, line := range strings.Split(string(stat), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					bootErr = err
					return
				}
				bootTime = time.Unix(secs, 0)
			}
		}
	})
	return bootID, bootTime, bootErr
}

// ticksToTime converts a start time in ticks since boot to wall time.
func ticksToTime(ticks uint64) time.Time {
	_, bt, err := bootInfo()
	if err != nil {
		return time.Time{}
	}
	return bt.Add(time.Duration(ticks) * time.Second / clockTicks)
}
