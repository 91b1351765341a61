"""The shipped CI recipes (deploy/ci/), run as CI would run them: their own shell commands, in a test
repository with a signed release tag, under the variables GitHub Actions and GitLab CI set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("ssh-keygen") is None, reason="git and ssh-keygen are needed"
)

DEMO_UK = ROOT / "fixtures" / "demo" / "manifests" / "uk.yaml"


@pytest.fixture(scope="module")
def tagged_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service repository: deploy/ manifests, allowed signers for both forges, a runbook, a signed v2.0.0."""
    home = tmp_path_factory.mktemp("ci-home")
    path = home / "service"
    path.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(home / "gitconfig")}
    (home / "gitconfig").write_text("[user]\n\tname = Release Bot\n\temail = release@acme.example\n")
    key = home / "release"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (path / "deploy").mkdir()
    shutil.copy(DEMO_UK, path / "deploy" / "uk.yaml")
    (path / "RUNBOOK.md").write_text("# Runbook\n## Rollback\n## Switch payment provider\n## On-call\n")
    signer = f"release@acme.example {(home / 'release.pub').read_text().strip()}\n"
    for forge in (".github", ".gitlab"):
        (path / forge).mkdir()
        (path / forge / "allowed_signers").write_text(signer)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "release 2.0.0", "-m", "Reviewed-by: Bob <bob@acme.example>")
    git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s", "v2.0.0", "-m", "v2.0.0")
    return path


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bindir = Path(sys.executable).parent  # `auditor` as the recipe's `pip install auditor` would put it on PATH
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env, "PATH": f"{bindir}:{os.environ['PATH']}", "AUDITOR_LOG_FORMAT": "text"},
    )


def _step(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in workflow["jobs"]["gate"]["steps"] if s.get("name") == name)


def test_github_actions_recipe(tagged_repo: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((ROOT / "deploy" / "ci" / "github-release-gate.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as true
    work = tmp_path / "checkout"
    shutil.copytree(tagged_repo, work)
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF_NAME": "v2.0.0", "GITHUB_STEP_SUMMARY": str(summary)}
    render = _run(_step(workflow, "render the manifests")["run"], work, env)
    assert render.returncode == 0, render.stderr
    gate_step = _step(workflow, "gate")
    proc = _run(gate_step["run"], work, {**env, **gate_step["env"]})
    # The demo's UK market has one unpinned image: the gate blocks (1), or is incomplete (3) where the
    # registries cannot be reached; either way the job fails, and says why.
    assert proc.returncode in (1, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    annotations = [line for line in proc.stdout.splitlines() if line.startswith(("::error", "::warning"))]
    assert any("file=rendered/uk.yaml" in a and "image-pinned-digest" in a for a in annotations), annotations
    text = summary.read_text()
    assert "## " in text and "ukgc" in text and ("BLOCKED" in text or "INCOMPLETE" in text)
    sarif = json.loads((work / "gate-report" / "ukgc" / "report.sarif").read_text())
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
        for loc in r.get("locations", [])
    }
    assert "deploy/uk.yaml" in uris or "rendered/uk.yaml" in uris, uris
    assert (work / "gate-report" / "ukgc" / "report.junit.xml").is_file()
    report_items = json.loads((work / "gate-report" / "ukgc" / "report.sarif").read_text())
    assert report_items["version"] == "2.1.0"


def test_gitlab_ci_recipe(tagged_repo: Path, tmp_path: Path) -> None:
    jobs = yaml.safe_load((ROOT / "deploy" / "ci" / "gitlab-release-gate.yml").read_text())
    job = jobs["release-gate"]
    assert job["rules"] == [{"if": "$CI_COMMIT_TAG"}]
    work = tmp_path / "checkout"
    shutil.copytree(tagged_repo, work)
    env = {"CI_COMMIT_TAG": "v2.0.0", **{k: str(v) for k, v in job["variables"].items()}}
    proc = _run("\n".join(job["script"]), work, env)
    assert proc.returncode in (1, 3), proc.stderr
    junit = work / "gate-report" / "ukgc" / "report.junit.xml"
    assert junit.is_file() and "release.tag-signed" in junit.read_text()
    assert not any(line.startswith("::error") for line in proc.stdout.splitlines())  # not GitHub: no annotations
