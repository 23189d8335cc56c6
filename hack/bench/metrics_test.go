package main

import (
	"reflect"
	"testing"
)

const sampleMetrics = `# HELP apiserver_request_total Counter of apiserver requests.
apiserver_request_total{code="201",component="apiserver",group="",resource="configmaps",subresource="",verb="POST",version="v1"} 1234
apiserver_request_total{code="201",component="apiserver",group="",resource="pods",subresource="binding",verb="POST",version="v1"} 12
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",subresource="",verb="GET",version="v1"} 99
apiserver_request_total{code="200",component="apiserver",resource="tasks",subresource="status",verb="PATCH"} 7
apiserver_request_duration_seconds_sum{component="apiserver",resource="tasks",subresource="status",verb="PATCH"} 1.5
apiserver_request_duration_seconds_count{component="apiserver",resource="tasks",subresource="status",verb="PATCH"} 7
apiserver_request_duration_seconds_bucket{component="apiserver",resource="tasks",subresource="status",verb="PATCH",le="1"} 7
apiserver_request_duration_seconds_sum{component="apiserver",resource="leases",subresource="",verb="PUT"} 2.5
apiserver_request_duration_seconds_count{component="apiserver",resource="leases",subresource="",verb="PUT"} 10
`

// TestParseMetrics: writes are counted by resource (reads left out,
// pods/binding as bindings), latencies summed per verb and resource, and
// histogram buckets ignored.
func TestParseMetrics(t *testing.T) {
	if got, want := parseWrites([]byte(sampleMetrics)), (writeCounts{"configmaps": 1234, "bindings": 12, "tasks": 7}); !reflect.DeepEqual(got, want) {
		t.Errorf("parseWrites = %v, want %v", got, want)
	}
	want := serverLatency{"PATCH tasks/status": {1.5, 7}, "PUT leases": {2.5, 10}}
	if got := parseLatency([]byte(sampleMetrics)); !reflect.DeepEqual(got, want) {
		t.Errorf("parseLatency = %v, want %v", got, want)
	}
}
