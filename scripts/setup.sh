#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine for tern: system packages, npm dependencies, build.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the project runs or tests against. Add to this list, never assume a package.
PACKAGES=(
  iproute2 iptables ipset iputils-ping conntrack procps
  etcd-server etcd-client
  bird2 frr gobgpd
  iperf3 containernetworking-plugins containerd
  python3 make g++
  libseccomp-dev pkg-config
)

die() { echo "setup: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (tern manipulates network namespaces, routes and iptables)"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "apt-get not found: install these packages by hand: ${missing[*]}"
  echo "setup: installing ${missing[*]}"
  # Keep packaged daemons (etcd, frr, bird, containerd) from starting as system services:
  # tests and the lab run their own private instances.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
  fi
  trap '[ $own_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# tern's native addon (native/: TCP MD5 / GTSM, network namespace switching, netlink off the JS
# thread), built by node-gyp against the installed Node headers (nothing is downloaded), rebuilt only
# when its sources are newer than the .node file.
addon=native/build/Release/tern_native.node
if [ ! -f "$addon" ] || [ -n "$(find native -maxdepth 1 \( -name '*.cc' -o -name '*.h' -o -name binding.gyp \) -newer "$addon")" ]; then
  echo "setup: building the native addon (native/)"
  (cd native && npx --no-install node-gyp rebuild --nodedir=/usr --loglevel=warn >/dev/null)
fi

npm run --silent build

# The upstream Kubernetes components the real-cluster tests and `ternctl lab up --kubernetes` run
# (kube-apiserver … kubectl, etcd 3.6, containerd 2, runc, crictl: deploy/lab/kubernetes/versions.env),
# built from the Go module proxy once per machine into ~/.cache/tern/k8s; about 10 minutes cold on
# 2 cores, nothing on a second run.
bash deploy/lab/kubernetes/build.sh
