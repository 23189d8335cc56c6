#!/usr/bin/env bash
# Builds the control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kubelet) from Go module sources into bin/k8s/<version>/,
# skipping those already built. Usage: hack/build-bins.sh [binary...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/hack/tools"
k8s_version=$(cd "$tools" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_version=$(cd "$tools" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
out="$root/bin/k8s/$k8s_version"
mkdir -p "$out"
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(etcd kube-apiserver kube-controller-manager kubectl)

major=$(echo "$k8s_version" | sed -E 's/^v([0-9]+)\..*/\1/')
minor=$(echo "$k8s_version" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"

for b in "${bins[@]}"; do
  if [ -x "$out/$b" ]; then continue; fi
  case "$b" in
    etcd) pkg=go.etcd.io/etcd/server/v3; flags="-s -w" ;;
    *) pkg=k8s.io/kubernetes/cmd/$b; flags="$ldflags" ;;
  esac
  echo "building $b ($([ "$b" = etcd ] && echo "$etcd_version" || echo "$k8s_version")); the first build of the control plane takes 10-15 minutes on 2 cores" >&2
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "$flags" -o "$out/$b.tmp" "$pkg")
  mv "$out/$b.tmp" "$out/$b"
done
echo "$out"
