"""The Git release source and the release checks, on real repositories built here with git, ssh-keygen and gpg.

Tags signed with SSH and OpenPGP keys generated in the test; unsigned, lightweight and untrusted-key tags;
merge, trailer and direct-push histories; review evidence from a forge export; a runbook; pinned GitOps
manifests; and a 10,000-commit history made with git fast-import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import AS_OF, run_cli, tagged_gitops_repo
from .kube_env import KubeEnv, kube_env_fixture  # noqa: F401  (the fixture `kube_env`)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

DIGEST = "sha256:" + "ab" * 32


@dataclass
class Repo:
    path: Path
    home: Path

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={
                **os.environ,
                "GIT_CONFIG_GLOBAL": str(self.home / "gitconfig"),
                "GNUPGHOME": str(self.home / "gnupg"),
                **(env or {}),
            },
        )
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def commit(self, name: str, message: str) -> str:
        (self.path / name).write_text(message)
        self.git("add", name)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


def _ssh_key(home: Path, name: str) -> Path:
    key = home / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True, timeout=60)
    return key


def _gpg_key(home: Path, uid: str) -> tuple[str, Path]:
    gnupg = home / "gnupg"
    gnupg.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", uid], check=True, capture_output=True, text=True, env=env
    ).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))
    armored = home / f"{uid.split('<')[1].split('@')[0]}.asc"
    armored.write_bytes(
        subprocess.run(["gpg", "--batch", "--armor", "--export", fpr], check=True, capture_output=True, env=env).stdout
    )
    return fpr, armored


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """v1.0.0 .. v1.1.0 with a reviewed merge, a trailer-reviewed commit and one direct push; tags signed in
    every way the checks must tell apart."""
    home = tmp_path_factory.mktemp("git-home")
    (home / "gitconfig").write_text(
        "[user]\n\tname = Release Bot\n\temail = release@acme.example\n[init]\n\tdefaultBranch = main\n"
    )
    path = home / "repo"
    path.mkdir()
    repo = Repo(path, home)
    repo.git("init", "-q")
    rel, mallory = _ssh_key(home, "release"), _ssh_key(home, "mallory")
    (path / "RUNBOOK.md").write_text(
        "# Wallet runbook\n\n## Rolling back a release\n\nargocd app rollback wallet\n\n"
        "## Switching the payment provider\n\nSet PSP_PRIMARY=adyen.\n\n## On-call contacts\n\nPagerDuty: wallet-primary\n"
    )
    (path / "deploy").mkdir()
    (path / "deploy" / "wallet.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: wallet}\nspec:\n  template:\n    spec:\n"
        f"      containers:\n      - name: wallet\n        image: registry.acme.example/acme/wallet:1.1.0@{DIGEST}\n"
        "      - name: sidecar\n        image: registry.acme.example/acme/proxy:2.0\n"
    )
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "initial release")
    ssh = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={rel}"]
    repo.git(*ssh, "tag", "-s", "v1.0.0", "-m", "v1.0.0")
    repo.git("checkout", "-q", "-b", "feature/limits")
    repo.commit("limits.txt", "deposit limits per market")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "feature/limits", "-m", "Merge pull request #12 from acme/feature/limits")
    merge = repo.git("rev-parse", "HEAD").strip()
    (path / "fix.txt").write_text("fix")
    repo.git("add", "fix.txt")
    repo.git("commit", "-q", "-m", "fix rounding", "-m", "Reviewed-by: Bob <bob@acme.example>")
    direct = repo.commit("hotfix.txt", "hotfix straight to main")
    repo.git(*ssh, "tag", "-s", "v1.1.0", "-m", "v1.1.0")
    repo.git("tag", "-a", "v1.1.1", "-m", "unsigned annotated")
    repo.git("tag", "v1.1.2")
    repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={mallory}", "tag", "-s", "v1.1.3", "-m", "by mallory")
    fpr, armored = _gpg_key(home, "Release Manager <releases@acme.example>")
    _other, other_armored = _gpg_key(home, "Someone Else <else@acme.example>")
    repo.git("-c", "gpg.format=openpgp", "-c", f"user.signingkey={fpr}", "tag", "-s", "v1.1.4", "-m", "gpg-signed")
    allowed = home / "allowed_signers"
    allowed.write_text(f"release@acme.example {(home / 'release.pub').read_text().strip()}\n")
    yield {
        "repo": repo,
        "path": path,
        "home": home,
        "allowed": allowed,
        "gpg": armored,
        "gpg_other": other_armored,
        "merge": merge,
        "direct": direct,
        "release_pub": home / "release.pub",
    }
    subprocess.run(
        ["gpgconf", "--kill", "all"],
        env={**os.environ, "GNUPGHOME": str(home / "gnupg")},
        capture_output=True,
        check=False,
    )


def _audit(tmp_path: Path, *args: str, profile: str = "baseline") -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    proc = run_cli(
        "audit", *args, "--profile", profile, "--out", str(out), "--format", "json,sarif,junit", "--as-of", AS_OF
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    pid = (
        "baseline"
        if profile == "baseline"
        else json.loads((next(out.iterdir()) / "report.json").read_text())["report"]["profile"]["id"]
    )
    return proc.returncode, json.loads((out / pid / "report.json").read_text())


def _item(report: dict[str, Any], key: str) -> dict[str, Any]:
    return next(i for i in report["items"] if i["key"] == key)


def _facets(report: dict[str, Any], check: str) -> set[str]:
    return {f for x in report["findings"] if x["check"] == check for f in x.get("facets", [])}


@pytest.mark.parametrize(
    ("tag", "trust", "status", "facet"),
    [
        ("v1.1.0", "allowed", "pass", None),
        ("v1.1.0", "none", "fail", "untrusted-key"),
        ("v1.1.1", "allowed", "fail", "unsigned-tag"),
        ("v1.1.2", "allowed", "fail", "lightweight-tag"),
        ("v1.1.3", "allowed", "fail", "untrusted-key"),
        ("v1.1.4", "gpg", "pass", None),
        ("v1.1.4", "gpg_other", "fail", "untrusted-key"),
    ],
)
def test_tag_signatures(
    release_repo: dict[str, Any], tmp_path: Path, tag: str, trust: str, status: str, facet: str | None
) -> None:
    flags = {
        "allowed": ["--allowed-signers", str(release_repo["allowed"])],
        "gpg": ["--gpg-key", str(release_repo["gpg"])],
        "gpg_other": ["--gpg-key", str(release_repo["gpg_other"])],
        "none": [],
    }[trust]
    _code, report = _audit(tmp_path, "--git", str(release_repo["path"]), "--tag", tag, *flags)
    item = _item(report, "release.tag-signed")
    assert item["status"] == status, (item, report["findings"])
    if facet:
        assert facet in _facets(report, "release-tag-signed")
        message = next(f["message"] for f in report["findings"] if f["check"] == "release-tag-signed")
        assert tag in message


def test_profile_trusted_signers_name_ssh_and_openpgp_keys(release_repo: dict[str, Any], tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "id: rel\nversion: '1'\ntitle: releases\nextends: baseline\nparameters:\n  trusted_signers:\n"
        f"    - {{name: release manager (ssh), key: {release_repo['release_pub']}}}\n"
        f"    - {{name: release manager (gpg), key: {release_repo['gpg']}}}\n"
    )
    for tag in ("v1.1.0", "v1.1.4"):
        _code, report = _audit(tmp_path / tag, "--git", str(release_repo["path"]), "--tag", tag, profile=str(profile))
        assert _item(report, "release.tag-signed")["status"] == "pass"


def test_history_direct_push_is_named(release_repo: dict[str, Any], tmp_path: Path) -> None:
    _code, report = _audit(
        tmp_path,
        "--git",
        str(release_repo["path"]),
        "--tag",
        "v1.1.0",
        "--allowed-signers",
        str(release_repo["allowed"]),
    )
    assert _item(report, "release.reviewed")["status"] == "fail"
    (finding,) = [f for f in report["findings"] if f["check"] == "release-reviewed"]
    assert finding["facets"] == ["direct-push"]
    assert release_repo["direct"][:12] in finding["message"] and "hotfix straight to main" in finding["message"]
    # the merged feature commit and the trailer-reviewed commit are not findings
    assert "rounding" not in finding["message"] and "deposit limits" not in finding["message"]
    assert finding["subject"] == {"repo": str(release_repo["path"]), "ref": "v1.1.0"}


def test_review_evidence_from_the_forge(release_repo: dict[str, Any], tmp_path: Path) -> None:
    evidence = tmp_path / "prs.json"
    evidence.write_text(
        json.dumps(
            {
                "pull_requests": [
                    {"number": 12, "merge_commit": release_repo["merge"], "author": "alice", "approvers": ["alice"]},
                    {"number": 13, "merge_commit": release_repo["direct"], "author": "carol", "approvers": ["dave"]},
                ]
            }
        )
    )
    _code, report = _audit(
        tmp_path, "--git", str(release_repo["path"]), "--tag", "v1.1.0", "--review-evidence", str(evidence)
    )
    messages = [f["message"] for f in report["findings"] if f["check"] == "release-reviewed"]
    assert _facets(report, "release-reviewed") == {"unapproved-merge"}
    assert "#12" in messages[0]  # approved only by its own author
    assert release_repo["direct"][:12] not in messages[0]  # the squash-merged PR #13 was approved by dave


def test_runbook_sections(release_repo: dict[str, Any], tmp_path: Path) -> None:
    _code, report = _audit(tmp_path, "--git", str(release_repo["path"]), "--tag", "v1.1.0")
    assert _item(report, "release.runbook")["status"] == "pass"
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "id: rb\nversion: '1'\ntitle: runbook\nextends: baseline\nparameters:\n  runbook_sections:\n"
        "    rollback: 'roll ?back'\n    game provider switch: 'game provider'\n    disaster recovery: 'disaster|DR'\n"
    )
    _code, report = _audit(tmp_path / "2", "--git", str(release_repo["path"]), "--tag", "v1.1.0", profile=str(profile))
    messages = [f["message"] for f in report["findings"] if f["check"] == "release-runbook"]
    assert "game provider switch" in messages[0] and "disaster recovery" in messages[0]
    assert "RUNBOOK.md" in messages[0]


def test_gitops_manifests_pin_digests(release_repo: dict[str, Any], tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "id: go\nversion: '1'\ntitle: gitops\nextends: baseline\nparameters:\n  gitops_paths: [deploy]\n"
    )
    _code, report = _audit(tmp_path, "--git", str(release_repo["path"]), "--tag", "v1.1.0", profile=str(profile))
    (finding,) = [f for f in report["findings"] if f["check"] == "release-gitops-pinned"]
    assert finding["facets"] == ["unpinned-image"]
    assert finding["location"] == {"file": "deploy/wallet.yaml", "line": 11}
    assert "deploy/wallet.yaml:11: registry.acme.example/acme/proxy:2.0" in finding["message"]


def test_sarif_points_at_files_and_junit_lists_the_release(release_repo: dict[str, Any], tmp_path: Path) -> None:
    from .test_sarif import _validate

    _code, _report = _audit(tmp_path, "--git", str(release_repo["path"]), "--tag", "v1.1.2")
    sarif = json.loads((tmp_path / "out" / "baseline" / "report.sarif").read_text())
    _validate(sarif)  # SARIF 2.1.0, the OASIS schema
    rules = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert "release-tag-signed" in rules
    junit = (tmp_path / "out" / "baseline" / "report.junit.xml").read_text()
    assert "release.tag-signed" in junit and "lightweight" in junit


def test_missing_tag_and_repository_are_named(release_repo: dict[str, Any], tmp_path: Path) -> None:
    _code, report = _audit(tmp_path, "--git", str(release_repo["path"]), "--tag", "v9.9.9")
    assert _item(report, "release.tag-signed")["status"] == "not_assessed"
    assert any("no tag 'v9.9.9'" in g["reason"] for g in report["coverage"])
    proc = run_cli("gate", "--git", str(tmp_path / "nowhere"), "--tag", "v1", "--profile", "baseline")
    assert proc.returncode == 3 and "no such repository" in proc.stderr and "Traceback" not in proc.stderr


def test_ten_thousand_commits(tmp_path: Path) -> None:
    """A 10,000-commit release made with git fast-import: every commit judged, the 3 unreviewed ones named."""
    path = tmp_path / "big"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines = []
    for i in range(10_000):
        trailer = "" if i in (17, 5_000, 9_998) else "\n\nReviewed-by: Bob <bob@acme.example>"
        message = f"change {i}{trailer}\n".encode()
        lines.append(
            f"commit refs/heads/main\nmark :{i + 1}\ncommitter Dev <dev@acme.example> {1_700_000_000 + i} +0000\n"
        )
        lines.append(f"data {len(message)}\n")
        lines.append(message.decode())
        if i:
            lines.append(f"from :{i}\n")
        lines.append(f"M 644 inline f{i % 50}.txt\ndata {len(str(i))}\n{i}\n\n")
        if i == 0:
            lines.append("reset refs/tags/v1.0.0\nfrom :1\n\n")
    lines.append("reset refs/tags/v2.0.0\nfrom :10000\n\n")
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input="".join(lines).encode(), check=True)
    _code, report = _audit(tmp_path, "--git", str(path), "--tag", "v2.0.0")
    (finding,) = [f for f in report["findings"] if f["check"] == "release-reviewed"]
    assert finding["message"].count("reached the release branch") == 3
    assert "change 17" in finding["message"] and "change 5000" in finding["message"]


def test_a_clone_url_is_cloned_and_judged_the_same(release_repo: dict[str, Any], tmp_path: Path) -> None:
    url = f"file://{release_repo['path']}"
    _code, report = _audit(tmp_path, "--git", url, "--tag", "v1.1.0", "--allowed-signers", str(release_repo["allowed"]))
    assert _item(report, "release.tag-signed")["status"] == "pass"
    assert _facets(report, "release-reviewed") == {"direct-push"}
    assert report["report"]["evidence"]["sources"][-1]["target"] == f"{url}@v1.1.0"


def test_drift_between_git_and_the_live_cluster(kube_env: KubeEnv, tmp_path: Path) -> None:
    """The test cluster runs the demo platform. Git at the tag declares the UK market with one digest changed
    (a release the cluster has not received): that workload drifts; the others match."""
    repo = tmp_path / "gitops"
    (repo / "deploy").mkdir(parents=True)
    demo = (Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "manifests" / "uk.yaml").read_text()
    kyc = "sha256:369bce5e314ba7dfbb01ee642e51934f56da06ef01e2fff1f09cca1ca8506248"
    assert kyc in demo
    (repo / "deploy" / "uk.yaml").write_text(demo.replace(kyc, "sha256:" + "1" * 64))
    profile = tagged_gitops_repo(repo, "v1.15.0", "uk 1.15", "deploy", tmp_path / "p.yaml")
    proc = run_cli(
        "audit",
        "--git",
        str(repo),
        "--tag",
        "v1.15.0",
        "--kubeconfig",
        str(kube_env.auditor_kubeconfig),
        "--profile",
        str(profile),
        "--out",
        str(tmp_path / "o"),
        "--format",
        "json",
        "--as-of",
        AS_OF,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads((tmp_path / "o" / "go" / "report.json").read_text())
    drift = [f for f in report["findings"] if f["check"] == "release-gitops-pinned" and "drift" in f.get("facets", [])]
    assert drift, [f["message"] for f in report["findings"] if f["check"] == "release-gitops-pinned"]
    text = " ".join(f["message"] for f in drift)
    assert "Deployment brand-uk/kyc" in text and "container kyc" in text and "1111111111" in text
    assert "brand-uk/wallet" not in text


def _kubectl() -> Path | None:
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "auditor-testenv" / "bin"
    return next(iter(sorted(cache.glob("kubectl-v*"))), None)


def test_kustomize_sources_in_git_are_rendered(tmp_path: Path) -> None:
    """A kustomize overlay under gitops_paths is rendered at the tag (kubectl kustomize, as kustomize is not
    installed here) and judged as rendered; without a renderer it is not assessed, never passed."""
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("no kubectl (scripts/setup.sh builds the test environment's)")
    repo = tmp_path / "gitops"
    base, prod = repo / "deploy" / "base", repo / "deploy" / "overlays" / "prod"
    base.mkdir(parents=True)
    prod.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [wallet.yaml]\n")
    (base / "wallet.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: wallet, namespace: brand-uk}\nspec:\n  replicas: 3\n"
        "  selector: {matchLabels: {app: wallet}}\n  template:\n    metadata: {labels: {app: wallet}}\n    spec:\n"
        f"      containers:\n      - name: wallet\n        image: registry.acme.example/acme/wallet@{DIGEST}\n"
    )
    (prod / "kustomization.yaml").write_text(
        "resources: [../../base]\nimages:\n- name: registry.acme.example/acme/wallet\n  newTag: 1.15.0\n  digest: ''\n"
    )
    profile = tagged_gitops_repo(repo, "v1.15.0", "prod", "deploy/overlays/prod", tmp_path / "p.yaml")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to(kubectl)

    def audit(path: str, out: str) -> dict[str, Any]:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "auditor",
                "audit",
                "--git",
                str(repo),
                "--tag",
                "v1.15.0",
                "--profile",
                str(profile),
                "--out",
                str(tmp_path / out),
                "--format",
                "json",
                "--as-of",
                AS_OF,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PATH": path, "AUDITOR_LOG_FORMAT": "text"},
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return dict(json.loads((tmp_path / out / "go" / "report.json").read_text()))

    rendered = audit(f"{bindir}:/usr/bin:/bin", "with")
    (finding,) = [f for f in rendered["findings"] if f["check"] == "release-gitops-pinned"]
    assert finding["facets"] == ["unpinned-image"], finding
    assert "deploy/overlays/prod (kustomize render)" in finding["message"]
    assert "registry.acme.example/acme/wallet:1.15.0" in finding["message"]
    # No renderer on PATH: the overlay cannot be read as the cluster would receive it.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    (plain / "tar").symlink_to(shutil.which("tar") or "/bin/tar")
    unrendered = audit(str(plain), "without")
    item = next(i for i in unrendered["items"] if i["key"] == "release.gitops-pinned")
    assert item["status"] == "not_assessed" and "kustomize is not installed" in item["reason"]
