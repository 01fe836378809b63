#!/bin/sh
# Installs the tern CNI plugin and its network configuration on the host (the init container of
# the tern-node DaemonSet). Every file appears by rename(2), so a container runtime never runs a
# half-copied plugin nor reads a half-written conflist (CNI checklist item 11).
#
# The plugin is a Node.js program: the host gets a private copy of this image's node binary in a
# directory named by its and the plugin's content hash, and `tern` itself is the one-file bundle of
# cni/main.ts with that node as its interpreter (`#!<dir>/node`): the runtime's exec starts node
# directly, with no shell or env(1) in between (each extra exec is latency of every pod). `tern` is
# replaced last, by rename, so a runtime calls either the old plugin or the new one. The directory
# the previous `tern` names is kept (an invocation may still be starting from it); older ones are
# removed.
#
# Environment (defaults in brackets):
#   CNI_BIN_DIR       where the host's plugin directory is mounted [/host/opt/cni/bin]
#   HOST_CNI_BIN_DIR  the same directory as the host sees it [/opt/cni/bin]
#   CNI_NET_DIR       where the host's CNI config directory is mounted [/host/etc/cni/net.d]
#   CNI_CONF_NAME     the conflist's file name [10-tern.conflist]
#   TERN_CNI_SOCKET   the agent's CNI socket on the host [/run/tern/cni.sock]
#   TERN_CNI_CHAIN    auto: chain portmap and bandwidth when the host has them; none: tern alone [auto]
#   TERN_CNI_MTU      pod MTU written to the conflist [unset: the agent uses the uplink's]
#   TERN_PLUGIN_JS    the bundled plugin in this image [/opt/tern/dist/cni/tern.cjs]
#   TERN_NODE_BIN     the node binary to copy [the one on PATH]
set -eu

CNI_BIN_DIR=${CNI_BIN_DIR:-/host/opt/cni/bin}
HOST_CNI_BIN_DIR=${HOST_CNI_BIN_DIR:-/opt/cni/bin}
CNI_NET_DIR=${CNI_NET_DIR:-/host/etc/cni/net.d}
CNI_CONF_NAME=${CNI_CONF_NAME:-10-tern.conflist}
TERN_CNI_SOCKET=${TERN_CNI_SOCKET:-/run/tern/cni.sock}
TERN_CNI_CHAIN=${TERN_CNI_CHAIN:-auto}
TERN_CNI_MTU=${TERN_CNI_MTU:-}
TERN_PLUGIN_JS=${TERN_PLUGIN_JS:-/opt/tern/dist/cni/tern.cjs}
TERN_NODE_BIN=${TERN_NODE_BIN:-$(command -v node)}

fail() {
  echo "install-cni: $*" >&2
  exit 1
}

# Values that end up inside JSON or a shell script: refuse anything needing quoting.
for v in "$HOST_CNI_BIN_DIR" "$TERN_CNI_SOCKET" "$CNI_CONF_NAME"; do
  case "$v" in *[!A-Za-z0-9_./-]*) fail "unsafe characters in '$v'" ;; esac
done
case "$CNI_CONF_NAME" in */* | .*) fail "CNI_CONF_NAME must be a plain file name" ;; *.conflist) ;; *) fail "CNI_CONF_NAME must end in .conflist" ;; esac
case "$TERN_CNI_CHAIN" in auto | none) ;; *) fail "TERN_CNI_CHAIN must be auto or none" ;; esac
case "$TERN_CNI_MTU" in '') ;; *[!0-9]*) fail "TERN_CNI_MTU must be a number" ;; esac
[ -d "$CNI_BIN_DIR" ] || fail "plugin directory $CNI_BIN_DIR is missing"
[ -d "$CNI_NET_DIR" ] || fail "config directory $CNI_NET_DIR is missing"
[ -f "$TERN_PLUGIN_JS" ] || fail "plugin bundle $TERN_PLUGIN_JS is missing"
[ -x "$TERN_NODE_BIN" ] || fail "node binary $TERN_NODE_BIN is missing"

# 1. The payload, under a content-addressed name.
version=$({ "$TERN_NODE_BIN" --version && sha256sum <"$TERN_PLUGIN_JS"; } | sha256sum | cut -c1-12)
payload=".tern-$version"
if [ ! -d "$CNI_BIN_DIR/$payload" ]; then
  tmp="$CNI_BIN_DIR/$payload.tmp.$$"
  rm -rf "$tmp"
  mkdir "$tmp"
  cp "$TERN_NODE_BIN" "$tmp/node"
  chmod 0755 "$tmp" "$tmp/node"
  # -T: never move into an existing directory (another installer may have won the race).
  mv -T "$tmp" "$CNI_BIN_DIR/$payload" 2>/dev/null || rm -rf "$tmp"
fi

# 2. The plugin, its interpreter line naming the payload's node by its host path; replaced by rename.
previous=""
if [ -f "$CNI_BIN_DIR/tern" ]; then
  # This form's interpreter line, or the TERN_DIR= line of the sh wrapper earlier versions installed.
  previous=$(sed -n -e '1s|^#!.*/\(\.tern-[0-9a-f]*\)/node$|\1|p' -e 's|^TERN_DIR=.*/||p' "$CNI_BIN_DIR/tern")
fi
tmp="$CNI_BIN_DIR/.tern.tmp.$$"
{
  echo "#!$HOST_CNI_BIN_DIR/$payload/node"
  sed '1{/^#!/d}' "$TERN_PLUGIN_JS"
} >"$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$CNI_BIN_DIR/tern"

for dir in "$CNI_BIN_DIR"/.tern-*; do
  [ -d "$dir" ] || continue
  name=${dir##*/}
  case "$name" in "$payload" | "$previous" | *.tmp.*) continue ;; esac
  rm -rf "$dir"
done

# 3. The conflist, replaced by rename.
plugins="{\"type\":\"tern\",\"agentSocket\":\"$TERN_CNI_SOCKET\",\"ipam\":{\"type\":\"tern\"}"
[ -n "$TERN_CNI_MTU" ] && plugins="$plugins,\"mtu\":$TERN_CNI_MTU"
plugins="$plugins}"
if [ "$TERN_CNI_CHAIN" = auto ]; then
  [ -x "$CNI_BIN_DIR/portmap" ] &&
    plugins="$plugins,{\"type\":\"portmap\",\"snat\":true,\"capabilities\":{\"portMappings\":true}}"
  [ -x "$CNI_BIN_DIR/bandwidth" ] &&
    plugins="$plugins,{\"type\":\"bandwidth\",\"capabilities\":{\"bandwidth\":true}}"
fi
tmp="$CNI_NET_DIR/.$CNI_CONF_NAME.tmp.$$"
printf '{"cniVersion":"1.0.0","cniVersions":["0.4.0","1.0.0","1.1.0"],"name":"tern","plugins":[%s]}\n' \
  "$plugins" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$CNI_NET_DIR/$CNI_CONF_NAME"

# Runtimes use the first configuration in name order: say so if another one comes first.
for f in "$CNI_NET_DIR"/*; do
  name=${f##*/}
  [ "$name" = "$CNI_CONF_NAME" ] && break
  case "$name" in
    *.conf | *.conflist | *.json) echo "install-cni: warning: $name sorts before $CNI_CONF_NAME; runtimes will use it" >&2 ;;
  esac
done

echo "install-cni: tern $version installed in $HOST_CNI_BIN_DIR, $CNI_CONF_NAME written"
