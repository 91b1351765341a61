#!/usr/bin/env bash
# Install the peer scanners the benchmark compares against, cached outside the repo. Idempotent.
#   Checkov   from PyPI, in its own venv           ~/.cache/auditor-bench/checkov-venv
#   kube-score built from its Go module (pinned)   ~/.cache/auditor-tools/bin/kube-score
#   Polaris   attempted from its Go module (pinned); the module proxy refuses it here (see RESULTS.md)
set -uo pipefail
CACHE=${AUDITOR_BENCH_CACHE:-$HOME/.cache/auditor-bench}
TOOLS=${AUDITOR_TOOLS:-$HOME/.cache/auditor-tools/bin}
CHECKOV_VERSION=3.3.30
KUBE_SCORE_VERSION=v1.20.0
POLARIS_VERSION=v9.6.1
mkdir -p "$CACHE" "$TOOLS"

if [ ! -x "$CACHE/checkov-venv/bin/checkov" ]; then
  python3 -m venv "$CACHE/checkov-venv"
  "$CACHE/checkov-venv/bin/pip" install -q "checkov==$CHECKOV_VERSION" || echo "install-peers: checkov install failed" >&2
fi
if [ ! -x "$TOOLS/kube-score" ]; then
  GOBIN="$TOOLS" go install "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" || echo "install-peers: kube-score build failed" >&2
fi
if [ ! -x "$TOOLS/polaris" ]; then
  GOBIN="$TOOLS" go install "github.com/fairwindsops/polaris/v9@$POLARIS_VERSION" 2> "$CACHE/polaris-install.log" \
    || echo "install-peers: polaris not available: $(head -c 300 "$CACHE/polaris-install.log")" >&2
fi
ls -1 "$TOOLS" "$CACHE/checkov-venv/bin/checkov" 2>/dev/null
