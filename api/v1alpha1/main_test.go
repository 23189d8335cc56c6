package v1alpha1_test

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/internal/testenv"
)

// env is one real kube-apiserver + etcd with the CRDs, shared by the tests.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
