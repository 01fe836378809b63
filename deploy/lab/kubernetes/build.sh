#!/usr/bin/env bash
# Builds the upstream Kubernetes components tern runs against (versions.env) from the Go module
# proxy into a machine-level cache, once per release: a second run builds nothing. Each group goes
# to $TERN_CACHE/k8s/<group>-<version>/, with a .recipe file saying exactly how it was built; a
# group is rebuilt only when its recipe (version, flags, go version) changes or a binary is missing.
# Go's own module and build caches are left in place, so a rebuild after a flag change is quick.
#   deploy/lab/kubernetes/build.sh            build what is missing, a progress line per component
#   deploy/lab/kubernetes/build.sh --print    print the folder of each group (group=dir), build nothing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=components.sh
source "$here/components.sh"
read_versions "$here/versions.env"

cache=${TERN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tern}/k8s
dir_of() { echo "$cache/$1-${VERSION[$1]}"; }
if [ "${1:-}" = --print ]; then
  for g in "${GROUPS_IN_ORDER[@]}"; do echo "$g=$(dir_of "$g")"; done
  exit 0
fi

say() { echo "setup: $*"; }
fail() { echo "setup: building $1 failed at step '$2'${3:+: $3}" >&2; exit 1; }

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || fail "the Kubernetes components" "find go" "Go 1.26 is not installed (looked on PATH and in /usr/local/go/bin)"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
goversion=$(go env GOVERSION)

# ldflags per group: the version each binary reports (without them kubernetes says v0.0.0-master
# and the node's kubeletVersion is wrong); -s -w drop the symbol tables (kubectl 79 MB, not 111).
ldflags() {
  local g=$1 v=${VERSION[$1]}
  case $g in
    kubernetes)
      local minor x; minor=${v#v1.}; minor=${minor%%.*}
      for x in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=1970-01-01T00:00:00Z ' \
          "$x" "$v" "$x" "$x" "$minor" "$x" "$x"
      done ;;
    containerd) printf -- '-X github.com/containerd/containerd/v2/version.Version=%s ' "$v" ;;
    runc) printf -- '-X main.version=%s ' "${v#v}" ;;
    crictl) printf -- '-X sigs.k8s.io/cri-tools/pkg/version.Version=%s ' "$v" ;;
  esac
  printf -- '-s -w'
}
# runc needs cgo for seccomp (without it every pod fails: "config provided but seccomp not
# supported"); everything else is built static, as upstream releases are.
tags() { [ "$1" = runc ] && echo seccomp || echo ""; }
cgo() { [ "$1" = runc ] && echo 1 || echo 0; }
# What `<binary> --version` (or `version`) must print for the build to count.
version_args() {
  case $1 in
    kubectl) echo "version --client" ;; ctr | crictl) echo "--version" ;; *) echo "--version" ;;
  esac
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # two worktrees running setup at once build once, not twice

for g in "${GROUPS_IN_ORDER[@]}"; do
  out=$(dir_of "$g"); v=${VERSION[$g]}; mod=${MODULE[$g]}; src=$here/modules/$g
  recipe="group=$g module=$mod@$v go=$goversion cgo=$(cgo "$g") tags=$(tags "$g") ldflags=$(ldflags "$g") components=${COMPONENTS[$g]}"
  complete=1
  for c in ${COMPONENTS[$g]}; do [ -x "$out/${c%%=*}" ] || complete=0; done
  if [ $complete -eq 1 ] && [ "$(cat "$out/.recipe" 2>/dev/null)" = "$recipe" ]; then continue; fi

  grep -qE "^[[:space:]]*(require[[:space:]]+)?$mod $v( |$)" "$src/go.mod" ||
    fail "$g" "check go.mod" "modules/$g/go.mod does not require $mod $v: run deploy/lab/kubernetes/update-go-mod.sh $g"
  if [ "$g" = kubernetes ]; then
    # Every staging module kubernetes' own go.mod replaces with ./staging/... must be replaced by
    # its published v0.Y.Z in ours: a missing one would build against a mismatched version.
    upstream=$(cd "$src" && go mod download -json "$mod@$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    want=$(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*|\1|p' "$upstream" | sort)
    have=$(sed -n 's|^replace \(k8s.io/[^ ]*\) => \1 v0\..*|\1|p' "$src/go.mod" | sort)
    [ -n "$want" ] && [ "$want" = "$have" ] ||
      fail "$g" "check go.mod" "its replaces differ from kubernetes' staging modules: run deploy/lab/kubernetes/update-go-mod.sh $g"
  fi
  tmp=$out.partial; rm -rf "$tmp"; mkdir -p "$tmp"
  log=$tmp/build.log
  say "$g $v: downloading modules"
  (cd "$src" && nice -n 10 go mod download) >"$log" 2>&1 || { tail -20 "$log" >&2; fail "$g" "go mod download"; }
  for c in ${COMPONENTS[$g]}; do
    name=${c%%=*} pkg=${c#*=}
    say "$g $v: building $name"
    t0=$(date +%s)
    (cd "$src" && CGO_ENABLED=$(cgo "$g") nice -n 10 go build -trimpath -tags "$(tags "$g")" -ldflags "$(ldflags "$g")" -o "$tmp/$name" "$pkg") >>"$log" 2>&1 ||
      { tail -30 "$log" >&2; fail "$name" "go build" "see the lines above"; }
    # shellcheck disable=SC2046
    reported=$("$tmp/$name" $(version_args "$name") 2>&1 | head -5) || true
    grep -qF -- "${v#v}" <<<"$reported" || fail "$name" "version check" "it reports '$reported', not ${v#v}"
    say "$g $v: built $name in $(($(date +%s) - t0)) s, $(($(stat -c %s "$tmp/$name") / 1048576)) MB"
  done
  echo "$recipe" >"$tmp/.recipe"
  rm -rf "$out"; mv "$tmp" "$out"
done
