#!/usr/bin/env bash
# Install everything the auditor and its tests need. Idempotent: re-running skips what is there.
#   - Debian packages: WeasyPrint's libraries (pango, harfbuzz-subset), fonts, poppler-utils (pdftoppm/pdftotext),
#     a JDK and Maven where missing (veraPDF, the PDF/A validator, comes from Maven Central)
#   - .venv with the package (editable) and its dev dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# veraPDF (the PDF/A validator in the tests) runs on a JDK and is fetched with Maven
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.auditor-deps-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # setuptools prints an informational notice (its class is InformationOnly) on every editable install
  # that maps folders to other import names (checks/ -> auditor_checks); a regular `pip install .` prints
  # nothing, as tests/test_packaging.py checks. The notice is filtered here so real warnings stay visible.
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.auditor-deps-*
  touch "$stamp"
fi
# The Pod Security Standards oracle for tests/test_pod_security_differential.py (cached; skipped without Go)
bash scripts/build-psa-oracle.sh >/dev/null || echo "setup: PSA oracle not built; its differential test will skip"
# veraPDF (PDF/A validator) from Maven Central, cached outside the repo, for the PDF/A-3b test
bash scripts/verapdf.sh --install >/dev/null || echo "setup: veraPDF not fetched; the PDF/A validation test will skip"
# kube-apiserver, kubectl and etcd for scripts/testenv (pinned; cached; a cold build takes several minutes)
bash scripts/testenv-build.sh kube etcd >/dev/null || echo "setup: testenv binaries not built; scripts/testenv up will try again"
# the registry part: distribution's registry, scripts/testenv-registry, crane, cosign v2 and v3 (pinned; cached;
# a cold build takes about 8 minutes)
bash scripts/testenv-build.sh registry >/dev/null ||
  echo "setup: testenv registry binaries not built; scripts/testenv up registry will try again"
# the s3 part: versitygw (pinned; cached; a cold build takes a minute or two). Its buckets are made at
# `scripts/testenv up s3` time, with boto3 from .venv; building it needs only Go.
bash scripts/testenv-build.sh s3 >/dev/null || echo "setup: versitygw not built; scripts/testenv up s3 will try again"
echo "setup: ready (.venv/bin/auditor)"
