package main

import (
	"strings"
	"testing"

	"github.com/agora-sched/agora/agent/runtime"
)

// TestUserPolicy: the shipped default gives each framework its own uid
// from a valid range and allows no named user; bad values of either flag
// fail with an error that names the flag.
func TestUserPolicy(t *testing.T) {
	r, allow, err := userPolicy(&options{taskUIDRange: runtime.DefaultTaskUIDs.String()})
	if err != nil || r == nil || *r != (runtime.IDRange{First: 2000000000, Last: 2000065535}) || allow != nil {
		t.Fatalf("default: range %v, policy %v, err %v", r, allow != nil, err)
	}
	if r, _, err := userPolicy(&options{}); r != nil || err != nil {
		t.Errorf("--task-uid-range=\"\": range %v, err %v; want per-framework uids off", r, err)
	}
	_, allow, err = userPolicy(&options{allowedUsers: "spark,hadoop"})
	if err != nil || allow("spark") != nil || allow("root") == nil {
		t.Errorf("--allowed-users=spark,hadoop: err %v; want spark allowed and root not", err)
	}
	for _, o := range []options{
		{taskUIDRange: "65536"}, {taskUIDRange: "0-65535"}, {taskUIDRange: "9-1"},
		{allowedUsers: "spark,"}, {allowedUsers: "*"}, {allowedUsers: "Spark"},
	} {
		_, _, err := userPolicy(&o)
		flag := "--task-uid-range"
		if o.allowedUsers != "" {
			flag = "--allowed-users"
		}
		if err == nil || !strings.HasPrefix(err.Error(), flag+": ") {
			t.Errorf("%+v: %v; want an error naming %s", o, err, flag)
		}
	}
}
