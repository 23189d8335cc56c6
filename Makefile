# Agora's build. `make run` starts Agora on this machine; `make test` runs
# every test against a real kube-apiserver and etcd built from source.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= agora:dev
GO ?= go
CONTROLLER_GEN ?= $(GO) tool controller-gen
KUSTOMIZE ?= $(GO) tool kustomize
# Control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl) built from Go module sources into bin/k8s/<version>/.
K8S_BINS ?= etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
TEST_FLAGS ?=
TEST_PKGS ?= ./...

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: manifests
manifests: ## Generate CRDs and RBAC roles from the Go markers.
	$(CONTROLLER_GEN) crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=master paths="./controllers/..." output:rbac:artifacts:config=config/rbac/master
	$(CONTROLLER_GEN) rbac:roleName=agent paths="./agent/..." output:rbac:artifacts:config=config/rbac/agent

.PHONY: fmt
fmt: ## gofmt the tree.
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null || true); \
	if [ -n "$$out" ]; then gofmt -w $$out; echo "gofmt rewrote: $$out"; fi

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: bins
bins: ## Build the control-plane binaries if missing (the first time takes 10-15 min).
	hack/build-bins.sh $(K8S_BINS) >/dev/null

.PHONY: test
test: generate manifests fmt vet bins ## Run all tests (envtest against a real apiserver, real cgroups).
	KUBEBUILDER_ASSETS="$$(hack/build-bins.sh $(K8S_BINS))" $(GO) test $(TEST_FLAGS) -count=1 $(TEST_PKGS)

# test-e2e: a real single-node Kubernetes on this host (hack/localnode; root,
# Debian's containerd, runc and CNI plugins), the kustomize install, tasks,
# and the agent and master pods deleted under them. See docs/e2e.md.
E2E_DATA_DIR ?= bin/e2e-node

.PHONY: test-e2e
test-e2e: ## End-to-end test on a real single-node Kubernetes (root; see docs/e2e.md).
	hack/build-bins.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet >/dev/null
	cd hack/localnode && CGO_ENABLED=0 $(GO) build -o $(CURDIR)/bin/localnode .
	$(GO) test -c -o bin/e2e-node.test ./test/e2e-node/
	bin/localnode run --data-dir $(E2E_DATA_DIR) -- env AGORA_E2E_OVERLAY=$(CURDIR)/test/e2e-node/overlay \
		bin/e2e-node.test -test.v -test.count=1 -test.timeout=15m

.PHONY: bench
bench: ## Allocator micro-benchmarks (see docs/benchmarks.md).
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./pkg/allocator/

.PHONY: bench-writes
bench-writes: ## apiserver CPU per write of a task's life, with and without the Task CRD's CEL rules, beside a schemaless custom resource and a ConfigMap, and the rules' own cost in process (see docs/benchmarks.md).
	$(GO) test -run '^$$' -bench BenchmarkTaskStatusRules -count 3 ./test/writecost/
	$(GO) test -run '^$$' -bench 'BenchmarkTaskWrites|BenchmarkPeerWrites' -benchtime 2000x -count 3 ./test/writecost/

.PHONY: bench-scale
bench-scale: bins ## Scale benchmark: master, 1000 simulated agents, SDK frameworks vs the apiserver ceiling and kube-scheduler (BENCH_SCALE_FLAGS=-h lists flags).
	$(GO) run ./hack/bench $(BENCH_SCALE_FLAGS)

##@ Build

.PHONY: build
build: ## Build the binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

.PHONY: run
run: bins build ## Run Agora on this host: local control plane, master, agents and a demo.
	bin/agora local --agents 3 --demo $(RUN_FLAGS)

.PHONY: docker-build
docker-build: ## Build the container image (needs a container engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: ## Remove the CRDs.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: ## Deploy Agora (config/default) with image $(IMG) to the cluster of the current kubeconfig.
	dir=config/.deploy-$$$$; mkdir -p "$$dir"; trap 'rm -rf "$$dir"' EXIT; \
	printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../default\nimages:\n- name: agora:dev\n  newName: %s\n  newTag: %s\n' \
	  "$(word 1,$(subst :, ,$(IMG)))" "$(or $(word 2,$(subst :, ,$(IMG))),latest)" > "$$dir/kustomization.yaml"; \
	$(KUSTOMIZE) build "$$dir" | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove Agora from the cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

# Use the kubectl built with the control plane: the machine's may be outside
# the version skew policy.
KUBECTL ?= $$(hack/build-bins.sh kubectl)/kubectl

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
