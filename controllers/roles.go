package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/allocator"
	"github.com/agora-sched/agora/pkg/resources"
)

// onRole applies a ResourceRole: weight and quota go to the allocator;
// a quota change rescinds outstanding offers so the next round can honour
// it (as Mesos does); who may use the role is re-checked for every framework.
func (e *engine) onRole(obj *agorav1.ResourceRole, deleted bool) {
	role := agorav1.RoleName(obj.Name)
	old := e.roles[role]
	if deleted {
		delete(e.roles, role)
		_ = e.alloc.RemoveRole(role)
	} else {
		if old != nil && !newer(obj.ResourceVersion, old.ResourceVersion) {
			return
		}
		e.roles[role] = obj
		if err := e.alloc.SetRole(roleInfo(role, obj)); err != nil {
			e.log.Error(err, "configuring role", "resourceRole", obj.Name)
		}
	}
	var oldQ, newQ [2]*agorav1.Resources
	if old != nil {
		oldQ = [2]*agorav1.Resources{old.Spec.Guarantee, old.Spec.Limit}
	}
	if !deleted {
		newQ = [2]*agorav1.Resources{obj.Spec.Guarantee, obj.Spec.Limit}
	}
	if !equality.Semantic.DeepEqual(oldQ, newQ) {
		e.rescindWhere(func(o *offerState) bool { return o.obj == nil || o.obj.Spec.Answer == nil }, RescindQuotaChanged,
			fmt.Sprintf("the quota of role %q changed", role))
	}
	for _, f := range e.frameworks {
		e.syncFramework(f)
	}
	e.dirty = true
}

func roleInfo(role string, obj *agorav1.ResourceRole) allocator.RoleInfo {
	info := allocator.RoleInfo{Name: role, Weight: 1}
	if w := obj.Spec.Weight; w != nil {
		info.Weight = w.AsApproximateFloat64()
	}
	if g := obj.Spec.Guarantee; g != nil {
		info.Guarantee = g.MustModel().ScalarsOnly()
	}
	if l := obj.Spec.Limit; l != nil {
		info.Limit = l.MustModel().ScalarsOnly()
		for k, set := range map[resources.Kind]bool{
			resources.CPUs: l.CPUs != nil, resources.Mem: l.Mem != nil, resources.Disk: l.Disk != nil, resources.GPUs: l.GPUs != nil,
		} {
			if set {
				info.Limited |= resources.KindsOf(k)
			}
		}
	}
	return info
}

// admit says whether the framework's namespace may use all its roles, and
// if not, what to fix. A ResourceRole that names namespaces (or a
// selector) restricts its role to them; otherwise the role is open only if
// it is one of the master's open roles ("*" by default).
func (e *engine) admit(f *fwState) (bool, string) {
	for _, role := range f.roles {
		rr := e.roles[role]
		objName := agorav1.RoleObjectName(role)
		if rr != nil && (len(rr.Spec.Namespaces) > 0 || rr.Spec.NamespaceSelector != nil) {
			if slices.Contains(rr.Spec.Namespaces, f.ns) {
				continue
			}
			if sel := rr.Spec.NamespaceSelector; sel != nil {
				s, err := metav1.LabelSelectorAsSelector(sel)
				if err != nil {
					// Objects stored before the CRD checked selectors can
					// still hold a bad one: it admits no namespace.
					return false, fmt.Sprintf("namespace %q may not use role %q: the spec.namespaceSelector of ResourceRole %q is invalid (%v); "+
						"fix it, or remove %q from spec.roles", f.ns, role, objName, err, role)
				}
				if s.Matches(labels.Set(e.nsLabels[f.ns])) {
					continue
				}
			}
			return false, fmt.Sprintf("namespace %q may not use role %q: ResourceRole %q allows %s; add %q to its spec.namespaces "+
				"(or label the namespace to match its spec.namespaceSelector), or remove %q from spec.roles",
				f.ns, role, objName, allowedDesc(rr), f.ns, role)
		}
		if !slices.Contains(e.opts.OpenRoles, role) {
			return false, fmt.Sprintf("role %q is not open to every namespace and no ResourceRole %q lets namespace %q use it: "+
				"create ResourceRole %q with spec.namespaces [%q], or remove %q from spec.roles", role, objName, f.ns, objName, f.ns, role)
		}
	}
	return true, ""
}

func allowedDesc(rr *agorav1.ResourceRole) string {
	if len(rr.Spec.Namespaces) > 0 {
		return "namespaces [" + strings.Join(rr.Spec.Namespaces, ", ") + "]"
	}
	s, err := metav1.LabelSelectorAsSelector(rr.Spec.NamespaceSelector)
	if err != nil {
		return "no namespace (its spec.namespaceSelector is invalid)"
	}
	return fmt.Sprintf("namespaces matching %q", s.String())
}

// onNamespace keeps namespace labels for namespaceSelector checks.
func (e *engine) onNamespace(obj *corev1.Namespace, deleted bool) {
	if deleted {
		delete(e.nsLabels, obj.Name)
		return
	}
	if equality.Semantic.DeepEqual(e.nsLabels[obj.Name], obj.Labels) {
		return
	}
	e.nsLabels[obj.Name] = obj.Labels
	for _, f := range e.frameworks {
		if f.ns == obj.Name {
			e.syncFramework(f)
		}
	}
}
