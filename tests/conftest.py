"""Shared helpers: real sources, real CLI processes, the shared corpus beside the checkout."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from auditor import evidence
from auditor.catalog import all_checks
from auditor.checkapi import Check, CheckContext
from auditor.models import EvidenceKind, EvidenceSet, Result, SourceRecord
from auditor.sources.manifests import ManifestSource

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"
AS_OF = "2026-11-27T02:00:00Z"
FIXTURE_PARAMS: dict[str, Any] = {
    "allowed_registries": ["registry.example.com"],
    "allowed_capabilities": ["NET_BIND_SERVICE"],
    "startup_seconds": 30,
    "critical_selector": {"tier": "critical"},
    "min_replicas_critical": 2,
    "autoscale_selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "realtime"]}]},
    "trusted_signers": [
        {"name": "acme release key", "key": "sha256:" + "ab" * 32},
        {
            "name": "acme CI (keyless)",
            "identity_regexp": "https://github.com/acme/.+",
            "issuer": "https://token.actions.githubusercontent.com",
        },
    ],
    "required_platforms": ["linux/amd64", "linux/arm64"],
    "vulnerability_budget": {"critical": 0, "high": {"max": 0, "older_than_days": 30}},
    "gitops_paths": ["deploy"],
    "rpo_hours": 24,
    "business_slis": [
        {"name": "deposit", "metric": "deposit", "alert": "Deposit"},
        {"name": "withdrawal", "metric": "withdraw"},
    ],
    "provider_hosts": ["api.psp.example", "*.kyc.example"],
    "allowed_regions": ["eu-west-2"],
}


def collect(*paths: str | Path, **kwargs: Any) -> EvidenceSet:
    source = ManifestSource([str(p) for p in paths], **kwargs)
    return evidence.build([source.collect()], collected_at=AS_OF)


def collect_fixture(path: Path) -> EvidenceSet:
    """A check fixture: its manifests, plus the registry evidence beside it (``<case>.registry.json``) if any.
    A ``# evidence: cluster-state`` line makes it evidence read from a live cluster."""
    ev = collect(path)
    if "\n# evidence: cluster-state\n" in "\n" + path.read_text():  # as if read from a live cluster
        ev = dataclasses.replace(ev, kinds=ev.kinds | {EvidenceKind.CLUSTER_STATE})
    registry = path.with_name(path.stem + ".registry.json")
    if registry.is_file():
        data = json.loads(registry.read_text())
        ev = evidence.with_registry(ev, data["images"], data["trust"], (), None)
    git = path.with_name(path.stem + ".git.json")
    if git.is_file():
        ev = evidence.with_git(ev, json.loads(git.read_text()), (), SourceRecord(type="git", target="fixture"))
    drills = path.with_name(path.stem + ".drills.yaml")
    if drills.is_file():  # drill records, read by the real source
        from auditor.sources.drills import DrillsSource

        found = DrillsSource([str(drills)]).collect()
        ev = evidence.with_drills(ev, found.records, found.gaps, found.sources)
    return ev


def check_by_id(check_id: str) -> Check:
    return next(c for c in all_checks() if c.meta.id == check_id)


def run_check(check_id: str, ev: EvidenceSet, params: Mapping[str, Any] | None = None) -> list[Result]:
    ctx = CheckContext(ev, params if params is not None else FIXTURE_PARAMS, AS_OF)
    return list(check_by_id(check_id).run(ctx))


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    log_format: str = "text",
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process: exit codes and stderr as users see them.

    Off a terminal the auditor logs JSON lines by default; tests read the text a person at a terminal
    sees unless they ask otherwise (``log_format=""`` leaves the default alone). ``env`` adds variables.
    """
    child = {**os.environ, **(env or {})}
    if log_format:
        child["AUDITOR_LOG_FORMAT"] = log_format
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=child,
    )


def run_audit(
    manifests: str | Path, profiles: Sequence[str], out: str | Path, fmt: str = "json", *extra: str
) -> subprocess.CompletedProcess[str]:
    """`auditor audit` on manifests with a fixed --as-of, as most CLI tests call it."""
    profile_args = [arg for p in profiles for arg in ("--profile", p)]
    return run_cli(
        "audit",
        "--manifests",
        str(manifests),
        *profile_args,
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--format",
        fmt,
        *extra,
    )


def tagged_gitops_repo(repo: Path, tag: str, message: str, gitops_path: str, profile: Path) -> Path:
    """Commit everything in ``repo`` as one commit, tag it (annotated), and write beside it a profile ``go`` that
    reads Git manifests under ``gitops_path``; return the profile."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", message], ["tag", "-a", tag, "-m", "v"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)
    profile.write_text(
        f"id: go\nversion: '1'\ntitle: gitops\nextends: baseline\nparameters:\n  gitops_paths: [{gitops_path}]\n"
    )
    return profile


def require_corpus(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpus not present at {path}")
    return path


def statuses(results: Sequence[Result]) -> set[str]:
    return {r.status.value for r in results}
