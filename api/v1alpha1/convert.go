package v1alpha1

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/agora-sched/agora/pkg/resources"
)

// Model converts the API's resources into the resource model: millicpus,
// bytes of mem and disk, whole GPUs and canonical port ranges.
func (r Resources) Model() (resources.Resources, error) {
	var m resources.Resources
	if r.CPUs != nil {
		m.Scalars[resources.CPUs] = r.CPUs.MilliValue()
	}
	if r.Mem != nil {
		m.Scalars[resources.Mem] = r.Mem.Value()
	}
	if r.Disk != nil {
		m.Scalars[resources.Disk] = r.Disk.Value()
	}
	if r.GPUs != nil {
		m.Scalars[resources.GPUs] = r.GPUs.Value()
	}
	for k, v := range m.Scalars {
		if v < 0 {
			return resources.Resources{}, fmt.Errorf("%s must not be negative", resources.Kind(k))
		}
	}
	if len(r.Ports) > 0 {
		rs := make([]resources.Range, 0, len(r.Ports))
		for _, p := range r.Ports {
			if p.Begin < 1 || p.End > math.MaxUint16 || p.Begin > p.End {
				return resources.Resources{}, fmt.Errorf("invalid port range %d-%d: ports run from 1 to 65535 and begin must not exceed end", p.Begin, p.End)
			}
			rs = append(rs, resources.Range{Begin: uint32(p.Begin), End: uint32(p.End)})
		}
		ports, err := resources.NewRanges(rs...)
		if err != nil {
			return resources.Resources{}, err
		}
		m.Ports = ports
	}
	return m, nil
}

// MustModel is Model for resources already validated by the apiserver; it
// returns empty resources on error.
func (r Resources) MustModel() resources.Resources {
	m, _ := r.Model()
	return m
}

// FromModel converts model resources into the API's form, leaving zero
// scalars out.
func FromModel(m resources.Resources) Resources {
	var r Resources
	if v := m.Scalars[resources.CPUs]; v != 0 {
		r.CPUs = resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	if v := m.Scalars[resources.Mem]; v != 0 {
		r.Mem = resource.NewQuantity(v, resource.BinarySI)
	}
	if v := m.Scalars[resources.Disk]; v != 0 {
		r.Disk = resource.NewQuantity(v, resource.BinarySI)
	}
	if v := m.Scalars[resources.GPUs]; v != 0 {
		r.GPUs = resource.NewQuantity(v, resource.DecimalSI)
	}
	for _, p := range m.Ports {
		r.Ports = append(r.Ports, PortRange{Begin: int32(p.Begin), End: int32(p.End)})
	}
	return r
}
