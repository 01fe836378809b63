# Sourced by build.sh and update-go-mod.sh: what each component group builds, from which module.
# The versions live in versions.env; the modules of ours that pin them in modules/<group>/go.mod.
# shellcheck shell=bash

# group -> the upstream module its go.mod requires
declare -A MODULE=(
  [kubernetes]=k8s.io/kubernetes
  [etcd]=go.etcd.io/etcd/server/v3
  [containerd]=github.com/containerd/containerd/v2
  [runc]=github.com/opencontainers/runc
  [crictl]=sigs.k8s.io/cri-tools
)
GROUPS_IN_ORDER=(kubernetes etcd containerd runc crictl)

# group -> "binary=package ..." (built with `go build -o binary package` inside modules/<group>)
declare -A COMPONENTS=(
  [kubernetes]="kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kubelet=k8s.io/kubernetes/cmd/kubelet kube-proxy=k8s.io/kubernetes/cmd/kube-proxy kubectl=k8s.io/kubernetes/cmd/kubectl"
  [etcd]="etcd=go.etcd.io/etcd/server/v3"
  [containerd]="containerd=github.com/containerd/containerd/v2/cmd/containerd containerd-shim-runc-v2=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 ctr=github.com/containerd/containerd/v2/cmd/ctr"
  [runc]="runc=github.com/opencontainers/runc"
  [crictl]="crictl=sigs.k8s.io/cri-tools/cmd/crictl"
)

# versions.env -> VERSION[group]
declare -A VERSION=()
read_versions() {
  local file=$1 line
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^([a-z]+)=(v[0-9][^[:space:]]*)$ ]] || { echo "versions.env: cannot read line: $line" >&2; return 1; }
    VERSION[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
  done <"$file"
  local g
  for g in "${GROUPS_IN_ORDER[@]}"; do
    [ -n "${VERSION[$g]:-}" ] || { echo "versions.env: no version for $g" >&2; return 1; }
  done
}
