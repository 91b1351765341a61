#!/usr/bin/env bash
# Validate a PDF against PDF/A-3B with the veraPDF command-line validator.
#
#   scripts/verapdf.sh FILE.pdf    validate (flavour 3b) and print a short summary
#   scripts/verapdf.sh --install   only fetch and prepare (idempotent)
#
# Exit: 0 compliant, 1 not compliant (including a PDF veraPDF cannot parse),
#       2 usage or setup error.
#
# veraPDF comes from Maven Central only: org.verapdf.apps:cli, whose jar is the
# self-contained CLI (Main-Class org.verapdf.apps.GreenfieldCliWrapper). It is
# cached, with Maven's own downloads, under
# ${AUDITOR_TESTENV_CACHE:-$HOME/.cache/auditor-testenv}/verapdf/, never in the repo.
# scripts/verapdf/VeraPdfSummary.java (JDK only) turns veraPDF's XML report into
# the summary; it is compiled into the same cache.
#
# Needs a JDK 11 or later (java + javac; set JAVA_HOME to choose one) and mvn
# (or, without mvn, curl; the jar's .sha1 from Maven Central is then checked).
# Overrides: VERAPDF_VERSION, MAVEN_CENTRAL_URL (the curl fallback only).
set -euo pipefail

VERAPDF_VERSION="${VERAPDF_VERSION:-1.30.2}"
GROUP_PATH="org/verapdf/apps"
ARTIFACT="cli"
CENTRAL="${MAVEN_CENTRAL_URL:-https://repo1.maven.org/maven2}"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/verapdf/VeraPdfSummary.java"
CACHE="${AUDITOR_TESTENV_CACHE:-$HOME/.cache/auditor-testenv}/verapdf"
JAR="$CACHE/lib/$ARTIFACT-$VERAPDF_VERSION.jar"
CLASSES="$CACHE/classes"

CLEANUP=()
cleanup() {
    if ((${#CLEANUP[@]})); then rm -rf "${CLEANUP[@]}"; fi
}
trap cleanup EXIT

die() {
    echo "verapdf: $*" >&2
    exit 2
}

if [[ -n "${JAVA_HOME:-}" ]]; then
    JAVA="$JAVA_HOME/bin/java"
    JAVAC="$JAVA_HOME/bin/javac"
else
    JAVA="$(command -v java || true)"
    JAVAC="$(command -v javac || true)"
fi

fetch_jar() {
    [[ -s "$JAR" ]] && return 0
    mkdir -p "$CACHE/lib"
    local tmp
    tmp="$(mktemp -d "$CACHE/fetch.XXXXXX")"
    CLEANUP+=("$tmp")
    if command -v mvn >/dev/null 2>&1; then
        # Run outside any project; strict checksums; Maven's downloads stay in the cache.
        if ! (cd "$tmp" && mvn -B -q -C -Dmaven.repo.local="$CACHE/m2" \
            "$DEP_PLUGIN:copy" \
            -Dartifact="org.verapdf.apps:$ARTIFACT:$VERAPDF_VERSION:jar" \
            -DoutputDirectory="$tmp/out" >"$tmp/mvn.log" 2>&1); then
            cat "$tmp/mvn.log" >&2
            die "mvn could not fetch org.verapdf.apps:$ARTIFACT:$VERAPDF_VERSION"
        fi
    elif command -v curl >/dev/null 2>&1; then
        local url="$CENTRAL/$GROUP_PATH/$ARTIFACT/$VERAPDF_VERSION/$ARTIFACT-$VERAPDF_VERSION.jar"
        mkdir -p "$tmp/out"
        curl -fsSL --retry 2 -o "$tmp/out/$ARTIFACT-$VERAPDF_VERSION.jar" "$url" \
            && curl -fsSL --retry 2 -o "$tmp/jar.sha1" "$url.sha1" \
            || die "curl could not fetch $url"
        local want got
        want="$(cut -c1-40 "$tmp/jar.sha1")"
        got="$(sha1sum "$tmp/out/$ARTIFACT-$VERAPDF_VERSION.jar" | cut -c1-40)"
        [[ "$want" == "$got" ]] || die "sha1 mismatch for $url (want $want, got $got)"
    else
        die "neither mvn nor curl is available to fetch veraPDF"
    fi
    [[ -s "$tmp/out/$ARTIFACT-$VERAPDF_VERSION.jar" ]] || die "fetch produced no jar"
    mv -f "$tmp/out/$ARTIFACT-$VERAPDF_VERSION.jar" "$JAR"
}

build_summary() {
    [[ -f "$SRC" ]] || die "missing $SRC"
    if [[ -f "$CLASSES/VeraPdfSummary.class" && ! "$SRC" -nt "$CLASSES/VeraPdfSummary.class" ]]; then
        return 0
    fi
    [[ -x "$JAVAC" ]] || die "javac not found (install a JDK or set JAVA_HOME)"
    mkdir -p "$CACHE"
    local tmp
    tmp="$(mktemp -d "$CACHE/classes.XXXXXX")"
    CLEANUP+=("$tmp")
    "$JAVAC" --release 11 -nowarn -d "$tmp" "$SRC" >&2 || die "javac failed on $SRC"
    rm -rf "$CLASSES"
    mv "$tmp" "$CLASSES"
}

install() {
    [[ -x "$JAVA" ]] || die "java not found (install a JDK or set JAVA_HOME)"
    fetch_jar
    build_summary
}

usage() {
    echo "usage: $0 FILE.pdf | --install" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
    --install)
        install
        echo "verapdf: ready: $JAR"
        exit 0
        ;;
    -h | --help) usage ;;
    -*) usage ;;
esac

PDF="$1"
[[ -f "$PDF" ]] || die "no such file: $PDF"
install

WORK="$(mktemp -d "${TMPDIR:-/tmp}/verapdf.XXXXXX")"
CLEANUP+=("$WORK")
# veraPDF's own exit code (0 valid, 1 invalid, 7 parse failure, ...) is not used:
# the report decides. --nonpdfext lets files without a .pdf suffix through.
set +e
"$JAVA" -jar "$JAR" --flavour 3b --format xml --nonpdfext \
    --maxfailuresdisplayed 1 "$PDF" >"$WORK/report.xml" 2>"$WORK/stderr.log"
vera_rc=$?
"$JAVA" -cp "$CLASSES" VeraPdfSummary "$WORK/report.xml"
rc=$?
set -e
if [[ $rc -ne 0 && $rc -ne 1 ]]; then
    echo "verapdf: veraPDF exited $vera_rc; its stderr:" >&2
    cat "$WORK/stderr.log" >&2
    echo "verapdf: if the cached jar is damaged, remove $CACHE and rerun $0 --install" >&2
    exit 2
fi
exit "$rc"
