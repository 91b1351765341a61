#!/usr/bin/env bash
# Build the binaries behind `scripts/testenv` from pinned versions on the Go module proxy, and print
# their paths as KEY=PATH lines.
#
#   scripts/testenv-build.sh [kube] [etcd] [registry] [s3]     (all when none is named)
#
#   kube      kube-apiserver, kubectl                       KUBE_APISERVER, KUBECTL
#   etcd      etcd                                          ETCD
#   registry  distribution's registry (no referrers API),   REGISTRY, TESTENV_REGISTRY, CRANE,
#             scripts/testenv-registry (go-containerregistry's COSIGN (v2), COSIGN3 (v3)
#             registry with the referrers API, TLS, basic and bearer auth), crane, cosign v2 and v3
#   s3        versitygw (an S3 gateway; its posix backend       VERSITYGW
#             has versioning and Object Lock)
#
# Cached outside the repo in ${XDG_CACHE_HOME:-$HOME/.cache}/auditor-testenv/bin/, named by version
# (testenv-registry by a hash of its sources): a binary that is there is reused without touching the
# network. The Go build cache is cleaned after a build (it is large and not needed again); the module
# cache is kept. The builds run one after another (2 cores: a Go build uses them all).
#
# kube-apiserver cannot be `go install`ed: k8s.io/kubernetes's go.mod replaces its staging modules
# (k8s.io/api, k8s.io/apiserver, ...) with ./staging/src/... paths, which only work inside its own
# tree. So a throwaway module in a temp dir requires k8s.io/kubernetes vX.Y.Z and replaces each of
# those staging modules with its published version v0.Y.Z, then builds the commands from it.
# etcd is built the same way from go.etcd.io/etcd/server/v3 (whose package root is the etcd main).
# The registry and s3 parts' commands have no replace directives, so they are `go install`ed at their pins.
set -euo pipefail

K8S_VERSION=${AUDITOR_TESTENV_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${AUDITOR_TESTENV_ETCD_VERSION:-v3.6.16}

bin_dir="${XDG_CACHE_HOME:-$HOME/.cache}/auditor-testenv/bin"
apiserver="$bin_dir/kube-apiserver-$K8S_VERSION"
kubectl="$bin_dir/kubectl-$K8S_VERSION"
etcd="$bin_dir/etcd-$ETCD_VERSION"

DISTRIBUTION_VERSION=${AUDITOR_TESTENV_DISTRIBUTION_VERSION:-v3.1.2}
GGCR_VERSION=${AUDITOR_TESTENV_GGCR_VERSION:-v0.22.1}  # crane; testenv-registry's go.mod pins its own
COSIGN2_VERSION=${AUDITOR_TESTENV_COSIGN2_VERSION:-v2.6.5}
COSIGN3_VERSION=${AUDITOR_TESTENV_COSIGN3_VERSION:-v3.1.3}
VERSITYGW_VERSION=${AUDITOR_TESTENV_VERSITYGW_VERSION:-v1.8.0}
repo=$(cd "$(dirname "$0")/.." && pwd)
registry_src="$repo/scripts/testenv-registry"
distribution="$bin_dir/registry-$DISTRIBUTION_VERSION"
crane="$bin_dir/crane-$GGCR_VERSION"
cosign2="$bin_dir/cosign-$COSIGN2_VERSION"
cosign3="$bin_dir/cosign-$COSIGN3_VERSION"
versitygw="$bin_dir/versitygw-$VERSITYGW_VERSION"
testenv_registry="$bin_dir/testenv-registry-$(cat "$registry_src/go.mod" "$registry_src/go.sum" "$registry_src/main.go" | sha256sum | cut -c1-16)"

want_kube=0 want_etcd=0 want_registry=0 want_s3=0
[ $# -eq 0 ] && set -- kube etcd registry s3
for part in "$@"; do
  case "$part" in
    kube) want_kube=1 ;;
    etcd) want_etcd=1 ;;
    registry) want_registry=1 ;;
    s3) want_s3=1 ;;
    *) echo "testenv-build: unknown part '$part' (kube, etcd, registry, s3)" >&2; exit 2 ;;
  esac
done

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "testenv-build: no Go toolchain on PATH, and no cached $1" >&2
    exit 3
  fi
}

work=""
cleanup() { if [ -n "$work" ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

build_kube() {
  need_go "$apiserver"
  mkdir -p "$bin_dir"
  work=$(mktemp -d "${TMPDIR:-/tmp}/auditor-testenv-build.XXXXXX")
  local minor_patch=${K8S_VERSION#v1.}  # 37.2
  local staging_version="v0.$minor_patch"
  echo "testenv-build: kube-apiserver and kubectl $K8S_VERSION (staging modules $staging_version); takes a few minutes" >&2
  local gomod
  gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || { echo "testenv-build: could not download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
  {
    echo "module auditor.local/testenv-build"
    echo
    grep -m1 '^go ' "$gomod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # every `k8s.io/<x> => ./staging/src/k8s.io/<x>` in kubernetes' go.mod, pointed at the published module
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/k8s\.io/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
    echo ")"
  } >"$work/go.mod"
  # The version the binaries report (kubernetes' hack/lib/version.sh sets the same variables).
  local minor=${minor_patch%%.*} ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "$work"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
    mkdir out
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o out/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  ) >&2
  mv -f "$work/out/kubectl" "$kubectl.tmp.$$" && mv -f "$kubectl.tmp.$$" "$kubectl"
  mv -f "$work/out/kube-apiserver" "$apiserver.tmp.$$" && mv -f "$apiserver.tmp.$$" "$apiserver"
  rm -rf "$work"; work=""
  go clean -cache
}

build_etcd() {
  need_go "$etcd"
  mkdir -p "$bin_dir"
  work=$(mktemp -d "${TMPDIR:-/tmp}/auditor-testenv-build.XXXXXX")
  echo "testenv-build: etcd $ETCD_VERSION" >&2
  printf 'module auditor.local/testenv-build-etcd\n\ngo 1.24\n' >"$work/go.mod"
  (
    cd "$work"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3
  ) >&2
  mv -f "$work/out/etcd" "$etcd.tmp.$$" && mv -f "$etcd.tmp.$$" "$etcd"
  rm -rf "$work"; work=""
  go clean -cache
}

# go_install BIN PACKAGE@VERSION [LDFLAGS]: build one command at its pin into BIN (atomically)
go_install() {
  local bin=$1 pkg=$2 ldflags="-s -w ${3:-}" start=$SECONDS
  need_go "$bin"
  mkdir -p "$bin_dir"
  work=$(mktemp -d "${TMPDIR:-/tmp}/auditor-testenv-build.XXXXXX")
  echo "testenv-build: $pkg" >&2
  # `go install pkg@version` builds outside any module: the caller's GOFLAGS (-mod=vendor, ...) must not apply
  (GOBIN="$work" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "$ldflags" "$pkg") >&2
  local name=${pkg%@*}
  mv -f "$work/${name##*/}" "$bin.tmp.$$" && mv -f "$bin.tmp.$$" "$bin"  # atomic for a concurrent caller
  rm -rf "$work"; work=""
  echo "testenv-build: built $(basename "$bin") in $((SECONDS - start)) s" >&2
}

build_registry() {
  local built=0 start
  if [ ! -x "$distribution" ]; then
    go_install "$distribution" "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION" \
      "-X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION"
    built=1
  fi
  if [ ! -x "$testenv_registry" ]; then
    need_go "$testenv_registry"
    mkdir -p "$bin_dir"
    echo "testenv-build: scripts/testenv-registry" >&2
    start=$SECONDS
    # -mod=readonly: go.sum pins every module; a mismatch is an error, never a silent update
    (cd "$registry_src" && CGO_ENABLED=0 go build -mod=readonly -buildvcs=false -trimpath -ldflags "-s -w" \
      -o "$testenv_registry.tmp.$$" .) >&2
    mv -f "$testenv_registry.tmp.$$" "$testenv_registry"
    echo "testenv-build: built $(basename "$testenv_registry") in $((SECONDS - start)) s" >&2
    built=1
  fi
  if [ ! -x "$crane" ]; then
    go_install "$crane" "github.com/google/go-containerregistry/cmd/crane@$GGCR_VERSION" \
      "-X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$GGCR_VERSION"
    built=1
  fi
  if [ ! -x "$cosign2" ]; then
    go_install "$cosign2" "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN2_VERSION" \
      "-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN2_VERSION"
    built=1
  fi
  if [ ! -x "$cosign3" ]; then
    go_install "$cosign3" "github.com/sigstore/cosign/v3/cmd/cosign@$COSIGN3_VERSION" \
      "-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN3_VERSION"
    built=1
  fi
  if [ "$built" = 1 ]; then go clean -cache; fi
}

build_s3() {
  go_install "$versitygw" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  go clean -cache
}

if [ "$want_kube" = 1 ]; then
  { [ -x "$apiserver" ] && [ -x "$kubectl" ]; } || build_kube
  echo "KUBE_APISERVER=$apiserver"
  echo "KUBECTL=$kubectl"
fi
if [ "$want_etcd" = 1 ]; then
  [ -x "$etcd" ] || build_etcd
  echo "ETCD=$etcd"
fi
if [ "$want_registry" = 1 ]; then
  build_registry
  echo "REGISTRY=$distribution"
  echo "TESTENV_REGISTRY=$testenv_registry"
  echo "CRANE=$crane"
  echo "COSIGN=$cosign2"
  echo "COSIGN3=$cosign3"
fi
if [ "$want_s3" = 1 ]; then
  [ -x "$versitygw" ] || build_s3
  echo "VERSITYGW=$versitygw"
fi
