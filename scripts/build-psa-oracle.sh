#!/usr/bin/env bash
# Build the Pod Security Standards oracle (tests/psa_oracle: Kubernetes' own evaluator,
# k8s.io/pod-security-admission at the version pinned in its go.mod) and print its path.
#
# Idempotent and offline-safe once built: the binary is cached outside the repo, named by a
# hash of the Go sources, so a changed pin or program builds anew and an unchanged one is
# reused without touching the network. The Go build cache is cleaned afterwards (it is
# large and not needed again); the module cache is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/psa_oracle

hash=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
bin_dir="${XDG_CACHE_HOME:-$HOME/.cache}/auditor-testenv/bin"
bin="$bin_dir/psa-oracle-$hash"
if [ ! -x "$bin" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "build-psa-oracle: no Go toolchain on PATH, and no cached $bin" >&2
    exit 3
  fi
  mkdir -p "$bin_dir"
  tmp="$bin.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  # -mod=readonly: go.sum pins every module; a mismatch is an error, never a silent update
  (cd "$src" && go build -mod=readonly -buildvcs=false -trimpath -o "$tmp" .) >&2
  mv -f "$tmp" "$bin"  # atomic: a concurrent caller sees no binary or a whole one
  go clean -cache
fi
echo "$bin"
