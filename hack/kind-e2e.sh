#!/usr/bin/env bash
# End-to-end on kind: build Agora's image from the Dockerfile, create a kind
# cluster, load the image, deploy config/default with the image overridden,
# onboard the tenant of config/samples/framework_tenant.yaml and run the
# batch example framework as that tenant's ServiceAccount until its tasks
# finish.
#
# Needs a container engine (Docker), kind, kubectl and Go; it cannot run on
# machines without a container engine (`make test` covers the install there,
# see docs/install.md).
#
# Environment:
#   CLUSTER   kind cluster name (default agora-e2e); an existing one is reused
#   IMG       image to build and load (default agora:e2e; must have a tag)
#   KEEP=1    keep the cluster at the end (default: delete it if this script
#             created it)
#   KUBECTL   kubectl to use (default kubectl)
#   TIMEOUT   seconds to wait for the framework (default 300)
set -euo pipefail

CLUSTER=${CLUSTER:-agora-e2e}
IMG=${IMG:-agora:e2e}
KEEP=${KEEP:-0}
KUBECTL=${KUBECTL:-kubectl}
TIMEOUT=${TIMEOUT:-300}
TENANT_NS=batch # the namespace of config/samples/framework_tenant.yaml

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

for tool in docker kind go "$KUBECTL"; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
docker info >/dev/null 2>&1 || die "no container engine answers (docker info failed); this test needs one"
case "$IMG" in
*:*) ;;
*) die "IMG=$IMG must have a tag, e.g. agora:e2e" ;;
esac

WORK=$(mktemp -d)
created=0
cleanup() {
	rc=$?
	if [ "$rc" -ne 0 ] && [ -f "$WORK/kubeconfig" ]; then
		log "diagnostics"
		k get pods -n agora-system -o wide || true
		k logs -n agora-system deploy/agora-master --tail=50 || true
		k logs -n agora-system ds/agora-agent --tail=50 || true
		k get agents,frameworks,offers,tasks -A || true
	fi
	if [ "$created" = 1 ] && [ "$KEEP" != 1 ]; then
		log "deleting kind cluster $CLUSTER (KEEP=1 keeps it)"
		kind delete cluster --name "$CLUSTER" || true
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
k() { "$KUBECTL" --kubeconfig "$WORK/kubeconfig" "$@"; }

log "building $IMG from the Dockerfile"
docker build -t "$IMG" .

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
	log "reusing kind cluster $CLUSTER"
else
	log "creating kind cluster $CLUSTER"
	kind create cluster --name "$CLUSTER" --wait 180s
	created=1
fi
kind get kubeconfig --name "$CLUSTER" >"$WORK/kubeconfig"

log "loading $IMG into the cluster's nodes"
kind load docker-image "$IMG" --name "$CLUSTER"

log "deploying config/default with image $IMG"
# A copy of config/ with the image set, so the checkout stays unmodified.
cp -R config "$WORK/config"
cat >>"$WORK/config/default/kustomization.yaml" <<EOF
images:
- name: agora:dev
  newName: ${IMG%:*}
  newTag: ${IMG##*:}
EOF
go tool kustomize build "$WORK/config/default" | k apply --server-side -f -
k wait --for=condition=Established crd -l app.kubernetes.io/part-of=agora --timeout=60s
k -n agora-system rollout status deployment/agora-master --timeout=180s
k -n agora-system rollout status daemonset/agora-agent --timeout=180s

log "waiting for every node's agent to register"
nodes=$(k get nodes -o name | wc -l)
for _ in $(seq 90); do
	ready=$(k get agents -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
	[ "$ready" -ge "$nodes" ] && break
	sleep 2
done
k get agents
[ "$ready" -ge "$nodes" ] || die "only $ready of $nodes agents are Ready"

log "onboarding the tenant of config/samples/framework_tenant.yaml"
k apply --server-side -f config/samples/framework_tenant.yaml

# The framework runs on this host as the tenant's ServiceAccount, with a
# short-lived token: exactly what the tenant may do, nothing of the admin's.
token=$(k -n "$TENANT_NS" create token scheduler --duration=1h)
cp "$WORK/kubeconfig" "$WORK/tenant.kubeconfig"
"$KUBECTL" --kubeconfig "$WORK/tenant.kubeconfig" config set-credentials tenant --token="$token" >/dev/null
"$KUBECTL" --kubeconfig "$WORK/tenant.kubeconfig" config set-context --current --user=tenant --namespace="$TENANT_NS" >/dev/null

with_timeout=
if command -v timeout >/dev/null; then with_timeout="timeout $TIMEOUT"; fi
log "running the batch framework as $TENANT_NS/scheduler"
go build -o "$WORK/agora-batch" ./cmd/agora-batch
$with_timeout "$WORK/agora-batch" --kubeconfig "$WORK/tenant.kubeconfig" --namespace "$TENANT_NS" \
	--framework batch --repeat 3 \
	'echo "hello from $AGORA_TASK_NAME as $(id -un) in $AGORA_SANDBOX"' \
	'sleep 2'

k get frameworks,tasks -n "$TENANT_NS"
log "kind e2e passed"
