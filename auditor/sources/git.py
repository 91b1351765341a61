"""Git release evidence: the release tag and its signature, the commits since the previous release and how
each reached the release branch, the runbook at the tag, and the image references the manifests at the tag pin.

Read with the git CLI (what every CI runner has), never by re-implementing git. Tag signatures are
checked by ``git verify-tag`` itself: SSH signatures against an allowed-signers file, OpenPGP
signatures against a throwaway GnuPG home holding only the trusted keys, and x509 (gitsign/gpgsm)
where the installed git and gpgsm can. An unsigned or lightweight tag is recorded as such and can
never pass: the signature is looked for in the tag object itself, not inferred.

Verification and trust are split as for images: the source records who signed (an SSH key's
``SHA256:`` fingerprint, or an OpenPGP fingerprint) when a trusted key verifies it; the check decides,
per profile, whether that signer may sign releases.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.kube import as_mapping
from auditor.models import CoverageGap, SourceRecord

MAX_COMMITS = 100_000
MAX_FILE_BYTES = 4 * 1024 * 1024
_TRAILERS = ("Reviewed-by", "Approved-by")
_SEMVER = re.compile(r"(\d+)")


class GitError(Exception):
    """A git repository or tag that cannot be read; the message names it."""


@dataclass
class GitTrust:
    """Keys that may verify release tags: SSH public keys (``type base64`` lines) and armored OpenPGP key files."""

    ssh_keys: list[tuple[str, str]] = field(default_factory=list)
    """(origin, "type base64") pairs; origin is ``cli`` or ``profile``."""
    gpg_files: list[tuple[str, Path]] = field(default_factory=list)


def ssh_fingerprint(key_line: str) -> str | None:
    """``SHA256:<base64>`` of an OpenSSH public key line, as ssh-keygen and git print it."""
    parts = key_line.split()
    for i, part in enumerate(parts):
        if part.startswith(("ssh-", "ecdsa-sha2-", "sk-")) and i + 1 < len(parts):
            try:
                blob = base64.b64decode(parts[i + 1], validate=True)
            except ValueError:
                return None
            return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return None


def read_allowed_signers(path: Path) -> list[str]:
    """The key lines (``type base64``) of git's allowed-signers file (``principals [options] type key``)."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GitError(f"{path}: cannot read allowed signers: {exc}") from None
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.search(r"((?:ssh-|ecdsa-sha2-|sk-)\S+)\s+([A-Za-z0-9+/=]+)", line)
        if not m:
            raise GitError(f"{path}:{n}: not an allowed-signers line (principals [options] key-type base64-key)")
        keys.append(f"{m.group(1)} {m.group(2)}")
    return keys


def gpg_fingerprints(path: Path) -> list[str]:
    """The primary-key fingerprints of an armored OpenPGP public key file (gpg --show-keys)."""
    proc = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    fprs = []
    expect = False
    for line in proc.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            expect = True
        elif fields[0] == "fpr" and expect:
            fprs.append(fields[9])
            expect = False
    if not fprs:
        raise GitError(f"{path}: not an armored OpenPGP public key ({proc.stderr.strip()[:160] or 'no key found'})")
    return fprs


def version_key(tag: str) -> tuple[Any, ...]:
    """Semver-ish order: numbers compared as numbers (v1.10.0 after v1.9.2); a pre-release sorts first."""
    core, _, pre = tag.partition("-")
    nums = tuple(int(n) for n in _SEMVER.findall(core))
    return (nums, 0 if pre else 1, pre)


class GitSource:
    def __init__(
        self,
        repo: str,
        tag: str,
        *,
        tag_pattern: str = "v*",
        trust: GitTrust | None = None,
        review_evidence: Path | None = None,
        runbook_paths: Sequence[str] = ("RUNBOOK.md", "docs/runbook*.md", "runbook*.md", "docs/RUNBOOK.md"),
        manifest_paths: Sequence[str] = (),
    ) -> None:
        self.repo_spec = repo
        self.tag = tag
        self.tag_pattern = tag_pattern
        self.trust = trust or GitTrust()
        self.review_evidence = review_evidence
        self.runbook_paths = runbook_paths
        self.manifest_paths = manifest_paths
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[tuple[str, str]] | None = None
        self._unrendered: list[dict[str, str]] = []
        self.repo = Path(repo)

    # ------------------------------------------------------------------ git

    def _git(self, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.repo), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", **(env or {})},
            check=False,
            errors="replace",
        )
        if check and proc.returncode != 0:
            raise GitError(f"{self.repo_spec}: git {' '.join(args[:3])} failed: {proc.stderr.strip()[:300]}")
        return proc.stdout if check else proc.stdout + "\0" + proc.stderr

    def _open(self) -> None:
        if "://" in self.repo_spec or self.repo_spec.startswith("git@"):
            self._tmp = tempfile.TemporaryDirectory(prefix="auditor-git-")
            target = Path(self._tmp.name) / "repo.git"
            proc = subprocess.run(
                ["git", "clone", "--bare", "--quiet", "--no-tags", self.repo_spec, str(target)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            )
            if proc.returncode != 0:
                raise GitError(f"{self.repo_spec}: cannot clone: {proc.stderr.strip()[:300]}")
            self.repo = target
            self._git("fetch", "--quiet", "origin", "+refs/tags/*:refs/tags/*")
        elif not self.repo.exists():
            raise GitError(f"{self.repo_spec}: no such repository")
        self._git("rev-parse", "--git-dir")

    # ------------------------------------------------------------------ collect

    def collect(self) -> tuple[dict[str, Any], list[CoverageGap], SourceRecord]:
        try:
            self._open()
            record = self._collect()
            gaps: list[CoverageGap] = []
        except GitError as exc:
            record = {"repo": self.repo_spec, "tag": self.tag, "error": str(exc)}
            gaps = [CoverageGap(source="git", target=f"{self.repo_spec}@{self.tag}", gap="git-error", reason=str(exc))]
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
        commit = record.get("commit")
        return record, gaps, SourceRecord(type="git", target=f"{self.repo_spec}@{self.tag}", git_commit=commit)

    def _collect(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"repo": self.repo_spec, "tag": self.tag}
        kind = self._git("cat-file", "-t", f"refs/tags/{self.tag}", check=False).split("\0")[0].strip()
        if not kind:
            raise GitError(f"{self.repo_spec}: no tag {self.tag!r}")
        rec["tag_type"] = "annotated" if kind == "tag" else "lightweight"
        rec["commit"] = self._git("rev-parse", f"refs/tags/{self.tag}^{{commit}}").strip()
        rec["signature"] = self._signature() if kind == "tag" else {"status": "lightweight"}
        previous = self._previous()
        rec["previous_tag"] = previous
        rec["commits"] = self._commits(previous)
        if self.review_evidence is not None:
            rec["review_evidence"] = _read_review_evidence(self.review_evidence)
        rec["runbook"] = self._runbook()
        rec["manifests"] = self._manifest_images()
        rec["workloads"] = self._manifest_workloads()
        if self._unrendered:
            rec["unrendered"] = self._unrendered
        return rec

    def _previous(self) -> str | None:
        tags = [t for t in self._git("tag", "--list", self.tag_pattern).split() if t != self.tag]
        mine = version_key(self.tag)
        older = [t for t in tags if version_key(t) < mine]
        return max(older, key=version_key) if older else None

    def _signature(self) -> dict[str, Any]:
        raw = self._git("cat-file", "tag", f"refs/tags/{self.tag}")
        if "-----BEGIN SSH SIGNATURE-----" in raw:
            return self._verify_ssh()
        if "-----BEGIN PGP SIGNATURE-----" in raw:
            return self._verify_gpg()
        if "-----BEGIN SIGNED MESSAGE-----" in raw or "-----BEGIN CMS-----" in raw:
            return self._verify_x509()
        return {"status": "unsigned"}

    def _verify_ssh(self) -> dict[str, Any]:
        if not self.trust.ssh_keys:
            return {
                "format": "ssh",
                "status": "no-trusted-keys",
                "detail": "SSH-signed; no SSH keys were given to verify it",
            }
        with tempfile.TemporaryDirectory(prefix="auditor-ssh-") as tmp:
            allowed = Path(tmp) / "allowed_signers"
            allowed.write_text("".join(f"* {key}\n" for _origin, key in self.trust.ssh_keys))
            out = self._git("-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-tag", "--raw", self.tag, check=False)
        m = re.search(r'Good "git" signature (?:for (\S+) )?with (\S+) key (SHA256:\S+)', out)
        if m and "No principal matched" in out:
            # git checked the signature without a trusted key (ssh-keygen -Y check-novalidate): valid, but whose?
            return {
                "format": "ssh",
                "status": "untrusted-key",
                "fingerprint": m.group(3),
                "detail": f"SSH-signed by {m.group(3)}, a key that is not among the trusted keys",
            }
        if m:
            return {
                "format": "ssh",
                "status": "verified",
                "fingerprint": m.group(3),
                "principal": "" if m.group(1) in (None, "*") else m.group(1),
            }
        return {
            "format": "ssh",
            "status": "untrusted-key",
            "detail": "SSH-signed, but by a key that is not among the trusted keys (or the signature is bad)",
        }

    def _verify_gpg(self) -> dict[str, Any]:
        if not self.trust.gpg_files:
            return {
                "format": "gpg",
                "status": "no-trusted-keys",
                "detail": "OpenPGP-signed; no OpenPGP keys were given",
            }
        with tempfile.TemporaryDirectory(prefix="auditor-gnupg-") as home:
            os.chmod(home, 0o700)
            env = {"GNUPGHOME": home}
            for _origin, path in self.trust.gpg_files:
                subprocess.run(
                    ["gpg", "--batch", "--quiet", "--import", str(path)],
                    env={**os.environ, **env},
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            out = self._git("verify-tag", "--raw", self.tag, env=env, check=False)
            subprocess.run(
                ["gpgconf", "--kill", "all"], env={**os.environ, **env}, capture_output=True, timeout=30, check=False
            )
        valid = re.search(r"\[GNUPG:\] VALIDSIG ([^\n]+)", out)
        if valid and "[GNUPG:] GOODSIG" in out:
            fields = valid.group(1).split()
            primary = fields[9] if len(fields) >= 10 else fields[0]  # the primary key's fingerprint (field 10)
            uid = re.search(r"\[GNUPG:\] GOODSIG \S+ (.+)", out)
            return {
                "format": "gpg",
                "status": "verified",
                "fingerprint": primary,
                "principal": uid.group(1) if uid else "",
            }
        if "[GNUPG:] BADSIG" in out:
            return {
                "format": "gpg",
                "status": "bad-signature",
                "detail": "the OpenPGP signature does not match the tag",
            }
        if "[GNUPG:] EXPKEYSIG" in out or "[GNUPG:] REVKEYSIG" in out:
            return {"format": "gpg", "status": "untrusted-key", "detail": "signed by an expired or revoked key"}
        return {
            "format": "gpg",
            "status": "untrusted-key",
            "detail": "OpenPGP-signed by a key that is not among the trusted keys",
        }

    def _verify_x509(self) -> dict[str, Any]:
        if shutil.which("gpgsm") is None:
            return {"format": "x509", "status": "unsupported", "detail": "x509-signed; gpgsm is not installed"}
        out = self._git("-c", "gpg.format=x509", "verify-tag", "--raw", self.tag, check=False)
        m = re.search(r"\[GNUPG:\] VALIDSIG (\S+)", out)
        if m and "[GNUPG:] GOODSIG" in out:
            return {"format": "x509", "status": "verified", "fingerprint": m.group(1), "principal": ""}
        return {
            "format": "x509",
            "status": "untrusted-key",
            "detail": "x509-signed; gpgsm could not verify it with its trust store",
        }

    def _commits(self, previous: str | None) -> list[dict[str, Any]]:
        rng = f"{previous}..refs/tags/{self.tag}" if previous else f"refs/tags/{self.tag}"
        first_parent = set(self._git("rev-list", "--first-parent", f"--max-count={MAX_COMMITS}", rng).split())
        fmt = "%H%x00%P%x00%ae%x00%s%x00%(trailers:key=Reviewed-by,key=Approved-by,valueonly,separator=%x01)%x1e"
        out = self._git("log", f"--max-count={MAX_COMMITS}", f"--format={fmt}", rng)
        commits = []
        for entry in out.split("\x1e"):
            entry = entry.strip("\n")
            if not entry:
                continue
            sha, parents, author, subject, trailers = [*entry.split("\x00"), "", "", "", "", ""][:5]
            commits.append(
                {
                    "sha": sha,
                    "parents": len(parents.split()),
                    "first_parent": sha in first_parent,
                    "author": author,
                    "subject": subject[:120],
                    "reviewed_by": [t.strip() for t in trailers.strip().split("\x01") if t.strip()],
                }
            )
        return commits

    def _runbook(self) -> dict[str, Any] | None:
        files = self._git("ls-tree", "-r", "--name-only", f"refs/tags/{self.tag}").splitlines()
        from fnmatch import fnmatchcase

        for pattern in self.runbook_paths:
            for f in sorted(files):
                if fnmatchcase(f, pattern) or fnmatchcase(f.lower(), pattern.lower()):
                    text = self._git("show", f"refs/tags/{self.tag}:{f}")[:MAX_FILE_BYTES]
                    headings = [
                        (n, line.lstrip("#").strip())
                        for n, line in enumerate(text.splitlines(), 1)
                        if re.match(r"^#{1,6}\s", line)
                    ]
                    return {"file": f, "headings": [{"line": n, "text": h[:160]} for n, h in headings]}
        return None

    def _gitops_files(self) -> list[tuple[str, str]]:
        """(path, text) of the YAML under the profile's GitOps paths at the tag. A kustomization or a Helm chart
        among them is rendered (``kustomize build``, or ``kubectl kustomize``; ``helm template``) when the tool
        is installed, and its raw files are not read; when it is not, the folder is recorded as unrendered."""
        if self._files is not None:
            return self._files
        self._files = []
        if not self.manifest_paths:
            return self._files
        from fnmatch import fnmatchcase

        names = self._git("ls-tree", "-r", "--name-only", f"refs/tags/{self.tag}").splitlines()
        chosen = [
            f
            for f in sorted(names)
            if any(fnmatchcase(f, p) or f.startswith(p.rstrip("/") + "/") for p in self.manifest_paths)
        ]
        roots = sorted(
            {
                str(Path(f).parent)
                for f in chosen
                if Path(f).name in ("kustomization.yaml", "kustomization.yml", "Chart.yaml")
            }
        )
        # A kustomization's bases are rendered by it: only the outermost roots are rendered.
        roots = [r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots)]
        for root in roots:
            tool = "helm" if f"{root}/Chart.yaml" in names else "kustomize"
            rendered = self._render(root, tool)
            if rendered is not None:
                self._files.append((f"{root} ({tool} render)", rendered))
        for f in chosen:
            if f.endswith((".yaml", ".yml")) and not any(f.startswith(r + "/") for r in roots):
                self._files.append((f, self._git("show", f"refs/tags/{self.tag}:{f}")[:MAX_FILE_BYTES]))
        return self._files

    def _render(self, root: str, tool: str) -> str | None:
        if tool == "kustomize":
            exe = shutil.which("kustomize")
            cmd = [exe, "build"] if exe else ([k, "kustomize"] if (k := shutil.which("kubectl")) else None)
        else:
            exe = shutil.which("helm")
            cmd = [exe, "template", Path(root).name] if exe else None
        if cmd is None:
            self._unrendered.append(
                {"path": root, "tool": tool, "reason": f"{root} is a {tool} source and {tool} is not installed here"}
            )
            return None
        with tempfile.TemporaryDirectory(prefix="auditor-render-") as tmp:
            archive = subprocess.run(
                # the whole tree: an overlay reaches its bases by relative paths (../../base)
                ["git", "-C", str(self.repo), "archive", "--format=tar", f"refs/tags/{self.tag}"],
                capture_output=True,
                timeout=120,
                check=False,
            )
            if archive.returncode != 0:
                raise GitError(f"{self.repo_spec}: git archive {root} failed: {archive.stderr.decode()[:200]}")
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True, timeout=120)
            proc = subprocess.run(
                [*cmd, str(Path(tmp) / root)], capture_output=True, text=True, timeout=300, check=False
            )
        if proc.returncode != 0:
            self._unrendered.append(
                {"path": root, "tool": tool, "reason": f"{' '.join(cmd[:2])} failed: {proc.stderr.strip()[:200]}"}
            )
            return None
        return proc.stdout[:MAX_FILE_BYTES]

    def _manifest_images(self) -> list[dict[str, Any]]:
        """Image references in the YAML the profile names (paths at the tag), with file and line."""
        out = []
        for f, text in self._gitops_files():
            for n, line in enumerate(text.splitlines(), 1):
                m = re.match(r"^\s*-?\s*image:\s*[\"']?([^\"'\s#]+)", line)
                if m:
                    out.append({"file": f, "line": n, "image": m.group(1)})
        return out

    def _manifest_workloads(self) -> list[dict[str, Any]]:
        """What Git declares per workload (kind, namespace, name, replicas, container images), for drift."""
        import yaml

        out = []
        for f, text in self._gitops_files():
            line = 1
            for chunk in re.split(r"(?m)^---[^\n]*\n", text):
                start, line = line, line + chunk.count("\n") + 1
                try:
                    doc = yaml.safe_load(chunk)
                except yaml.YAMLError:
                    continue
                if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
                    continue
                meta = as_mapping(doc.get("metadata"))
                pod = as_mapping(as_mapping(doc["spec"].get("template")).get("spec"))
                containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
                if not containers or not meta.get("name"):
                    continue
                replicas = doc["spec"].get("replicas")
                out.append(
                    {
                        "file": f,
                        "line": start,
                        "kind": str(doc.get("kind", "")),
                        "name": str(meta["name"]),
                        "namespace": str(meta.get("namespace") or ""),
                        "replicas": replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None,
                        "containers": {str(c.get("name", "")): str(c.get("image", "")) for c in containers},
                    }
                )
        return out


def _read_review_evidence(path: Path) -> dict[str, Any]:
    """The forge's export of merged pull requests (format in the README): merge commit, commits, approvers."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise GitError(f"{path}: not readable review evidence ({exc})") from None
    prs = data.get("pull_requests") if isinstance(data, dict) else None
    if not isinstance(prs, list):
        raise GitError(f'{path}: expected {{"pull_requests": [...]}}')
    out = []
    for i, pr in enumerate(prs):
        if not isinstance(pr, dict) or not isinstance(pr.get("merge_commit"), str):
            raise GitError(f"{path}: pull_requests[{i}] needs merge_commit (a commit sha)")
        approvers = [str(a) for a in pr.get("approvers") or [] if str(a) != str(pr.get("author", ""))]
        out.append(
            {
                "number": pr.get("number"),
                "merge_commit": pr["merge_commit"],
                "commits": [str(c) for c in pr.get("commits") or []],
                "author": str(pr.get("author", "")),
                "approvers": approvers,
            }
        )
    return {"file": path.name, "pull_requests": out}
