"""The archive: write-once, hash-chained, signed entries, and `verify` naming every kind of tampering."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from auditor import archive
from auditor.errors import OutputError

from .conftest import CORPUS, FIXTURES, run_cli

DEMO = FIXTURES / "demo" / "manifests"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("keys")
    archive.keygen(base / "operator")
    archive.keygen(base / "mallory", "ecdsa-p256")
    return {
        "key": base / "operator" / "auditor-signing.key",
        "pub": base / "operator" / "auditor-signing.pub",
        "mallory": base / "mallory" / "auditor-signing.key",
        "mallory_pub": base / "mallory" / "auditor-signing.pub",
    }


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Path:
    """Three nightly runs of the demo under two jurisdictions, archived by the real CLI."""
    base = tmp_path_factory.mktemp("nightly")
    for day in ("2026-11-25", "2026-11-26", "2026-11-27"):
        proc = run_cli(
            "audit",
            str(DEMO),
            "--profile",
            "ukgc",
            "--profile",
            "mga",
            "--out",
            str(base / "out"),
            "--format",
            "json,pdf",
            "--archive",
            str(base / "archive"),
            "--sign-key",
            str(keys["key"]),
            "--as-of",
            f"{day}T02:00:00Z",
        )
        assert proc.returncode == 1, proc.stderr
    return base / "archive"


def _pdftotext(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed; scripts/setup.sh installs it")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _copy(nightly: Path, tmp_path: Path) -> Path:
    target = tmp_path / "archive"
    shutil.copytree(nightly, target)
    return target


def _verify(path: Path, *pubs: Path) -> tuple[int, str]:
    proc = run_cli("verify", str(path), *[a for p in pubs for a in ("--public-key", str(p))])
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def test_an_untouched_archive_verifies(nightly: Path, keys: dict[str, Path]) -> None:
    code, out = _verify(nightly, keys["pub"])
    assert code == 0, out
    assert "OK - 6 entries" in out
    manifest = json.loads((nightly / "ukgc" / "000002" / "manifest.json").read_text())
    assert manifest["sequence"] == 2 and manifest["previous"]["sequence"] == 1
    assert set(manifest["files"]) == {"report.json", "report.pdf", "evidence.json"}
    assert manifest["profile"]["id"] == "ukgc" and len(manifest["profile"]["sha256"]) == 64
    assert manifest["created_at"] == "2026-11-26T02:00:00Z"


@pytest.mark.parametrize("name", ["report.json", "report.pdf", "evidence.json"])
def test_a_flipped_byte_in_any_file_is_named(nightly: Path, keys: dict[str, Path], tmp_path: Path, name: str) -> None:
    arch = _copy(nightly, tmp_path)
    path = arch / "mga" / "000002" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, out = _verify(arch, keys["pub"])
    assert code == 1
    assert f"INTEGRITY mga/000002/{name}: altered" in out
    assert out.count("INTEGRITY") == 1, out


def test_a_truncated_file_is_named_with_its_size(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    arch = _copy(nightly, tmp_path)
    path = arch / "ukgc" / "000003" / "report.pdf"
    path.write_bytes(path.read_bytes()[:1000])
    code, out = _verify(arch, keys["pub"])
    assert code == 1 and "ukgc/000003/report.pdf: altered" in out and "1000 bytes" in out


def test_an_edited_manifest_fails_its_signature(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    arch = _copy(nightly, tmp_path)
    path = arch / "ukgc" / "000001" / "manifest.json"
    path.write_text(path.read_text().replace("2026-11-25T02:00:00Z", "2026-11-24T02:00:00Z"))
    code, out = _verify(arch, keys["pub"])
    assert code == 1
    assert "ukgc/000001/manifest.json: the signature does not match" in out
    assert "ukgc/000002: the chain is broken" in out  # the next entry chained to the original manifest


def test_a_deleted_entry_is_named(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    arch = _copy(nightly, tmp_path)
    shutil.rmtree(arch / "mga" / "000002")
    code, out = _verify(arch, keys["pub"])
    assert code == 1
    assert "mga/000003: entries 000002..000002 are missing" in out
    assert "mga/000003: the chain is broken" in out


def test_swapped_entries_are_named(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    arch = _copy(nightly, tmp_path)
    one, two = arch / "ukgc" / "000001", arch / "ukgc" / "000002"
    one.rename(arch / "ukgc" / "tmp")
    two.rename(one)
    (arch / "ukgc" / "tmp").rename(two)
    code, out = _verify(arch, keys["pub"])
    assert code == 1
    assert "ukgc/000001: the manifest says sequence 2" in out and "ukgc/000002: the manifest says sequence 1" in out


def test_an_inserted_file_and_folder_are_named(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    arch = _copy(nightly, tmp_path)
    (arch / "ukgc" / "000002" / "extra.txt").write_text("added later")
    (arch / "ukgc" / "notes").mkdir()
    code, out = _verify(arch, keys["pub"])
    assert code == 1
    assert "ukgc/000002/extra.txt: not in the manifest (inserted)" in out
    assert "ukgc/notes: not an archive entry (inserted)" in out


def test_an_entry_forged_with_another_key_is_named(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    """Mallory replaces the last entry with her own, correctly chained and signed with her key."""
    arch = _copy(nightly, tmp_path)
    last = arch / "mga" / "000003"
    files = {n: (last / n).read_bytes() for n in ("report.json", "report.pdf", "evidence.json")}
    files["report.json"] = files["report.json"].replace(b'"verdict":"blocked"', b'"verdict":"pass"')
    profile = json.loads((last / "manifest.json").read_text())["profile"]
    shutil.rmtree(last)
    archive.append(arch, profile, files, archive.load_signing_key(keys["mallory"]), created_at="2026-11-27T02:00:00Z")
    code, out = _verify(arch, keys["pub"])
    assert code == 1
    assert "mga/000003: signed by" in out and "not a given public key" in out
    assert out.count("INTEGRITY") == 1, out  # the chain and digests are consistent: only the key betrays it
    # Verified against both keys (a rotation), Mallory's entry would pass: which keys to trust is the verifier's call.
    assert _verify(arch, keys["pub"], keys["mallory_pub"])[0] == 0


def test_entries_are_written_once(nightly: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    arch = _copy(nightly, tmp_path)
    with pytest.raises(FileExistsError):
        (arch / "ukgc" / "000001" / "report.json").open("xb")
    # A writer that finds its sequence number taken fails cleanly, naming the entry.
    real = archive.LocalStore.entries
    archive.LocalStore.entries = lambda self, profile: real(self, profile)[:-1]  # type: ignore[method-assign]
    try:  # as if another run won the race for the next number
        with pytest.raises(OutputError, match="000003: already exists; archive entries are written once"):
            archive.append(
                arch,
                {"id": "ukgc"},
                {"report.json": b"{}"},
                archive.load_signing_key(keys["key"]),
                created_at="2026-11-28T02:00:00Z",
            )
    finally:
        archive.LocalStore.entries = real  # type: ignore[method-assign]
    assert _verify(arch, keys["pub"])[0] == 0


def test_concurrent_runs_keep_the_chain(keys: dict[str, Path], tmp_path: Path) -> None:
    key = archive.load_signing_key(keys["key"])
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            archive.append(
                tmp_path / "a",
                {"id": "ukgc"},
                {"report.json": f'{{"run": {i}}}'.encode()},
                key,
                created_at="2026-11-27T02:00:00Z",
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = archive.verify(tmp_path / "a", [archive.load_verify_key(keys["pub"])])
    assert result.ok and result.entries == 8, result.problems


def test_archive_needs_a_signing_key_and_keygen_never_overwrites(tmp_path: Path, keys: dict[str, Path]) -> None:
    proc = run_cli(
        "audit", str(DEMO), "--profile", "ukgc", "--out", str(tmp_path / "o"), "--archive", str(tmp_path / "a")
    )
    assert proc.returncode == 2 and "--archive needs --sign-key" in proc.stderr
    again = run_cli("keygen", "--out", str(keys["key"].parent))
    assert again.returncode == 2 and "never overwritten" in again.stderr
    garbage = tmp_path / "bad.pub"
    garbage.write_text("nope")
    proc = run_cli("verify", str(tmp_path / "a"), "--public-key", str(garbage))
    assert proc.returncode == 2 and "bad.pub: not a PEM public key" in proc.stderr


def test_the_same_evidence_and_time_give_the_same_bytes_in_every_format(tmp_path: Path) -> None:
    """Reproducibility: `audit --evidence E --as-of T`, run twice (on any day), gives byte-identical JSON, PDF,
    SARIF and JUnit, so an archived report can be regenerated from its archived evidence and compared."""
    evidence = tmp_path / "evidence.json"
    assert run_cli("collect", str(DEMO), "--out", str(evidence)).returncode == 0
    for run in ("first", "second"):
        proc = run_cli(
            "audit",
            "--evidence",
            str(evidence),
            "--profile",
            "ukgc",
            "--out",
            str(tmp_path / run),
            "--format",
            "json,pdf,sarif,junit",
            "--as-of",
            "2026-11-27T02:00:00Z",
        )
        assert proc.returncode == 1, proc.stderr
    for name in ("report.json", "report.pdf", "report.sarif", "report.junit.xml"):
        first = (tmp_path / "first" / "ukgc" / name).read_bytes()
        assert first == (tmp_path / "second" / "ukgc" / name).read_bytes(), name


def test_each_nightly_report_says_what_changed_since_the_last(tmp_path: Path, keys: dict[str, Path]) -> None:
    # The demo without its recorded backup status, which would age between the two nights.
    base = tmp_path / "base"
    shutil.copytree(DEMO, base)
    (base / "10-resilience.yaml").unlink()
    fixed = tmp_path / "fixed"
    shutil.copytree(base, fixed)
    uk = fixed / "uk.yaml"
    digest = "sha256:921d071c62ae2cc72e26f36d8e8b562e8df90e36bc05e1472e929f19cc549c84"
    uk.write_text(uk.read_text().replace("acme/promo:2.3.1\n", f"acme/promo:2.3.1@{digest}\n"))
    reports = []
    for day, source in (("2026-11-26", base), ("2026-11-27", fixed)):
        proc = run_cli(
            "audit",
            str(source),
            "--profile",
            "ukgc",
            "--out",
            str(tmp_path / day),
            "--format",
            "json,pdf",
            "--archive",
            str(tmp_path / "archive"),
            "--sign-key",
            str(keys["key"]),
            "--as-of",
            f"{day}T02:00:00Z",
        )
        assert proc.returncode == 1, proc.stderr
        reports.append(json.loads((tmp_path / day / "ukgc" / "report.json").read_text()))
    assert reports[0]["since_last_report"]["previous"] is None
    since = reports[1]["since_last_report"]
    assert since["previous"]["sequence"] == 1 and since["new"] == []
    assert [(f["check"], f["subject"]) for f in since["resolved"]] == [
        ("image-pinned-digest", "Deployment brand-uk/promo")
    ]
    assert {"key": "image.pinned-digest", "old": "fail", "new": "pass"} in since["items_changed"]
    # Each report carries its own trend (archived runs, then itself), and the PDF draws it.
    runs = reports[1]["trend"]["runs"]
    assert [r["sequence"] for r in runs] == [1, None]
    assert runs[0]["sections"]["Supply chain"] < runs[1]["sections"]["Supply chain"]
    assert runs[0]["pass_rate"] < runs[1]["pass_rate"]
    assert [r["sequence"] for r in reports[0]["trend"]["runs"]] == [None]
    pdf_text = " ".join(_pdftotext(tmp_path / "2026-11-27" / "ukgc" / "report.pdf").split())
    assert "Trend Pass rate (passed items over items with a verdict" in pdf_text
    assert "last 2 report(s) in the archive" in pdf_text
    # The trend over the same archive: the supply-chain section improved, and the promo fix took one day.
    proc = run_cli("trend", str(tmp_path / "archive"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    trend = json.loads(proc.stdout)["ukgc"]
    rates = [run["sections"]["Supply chain"] for run in trend["runs"]]
    assert len(rates) == 2 and rates[1] > rates[0]
    remediation = trend["remediation"]
    assert remediation["resolved"] == 1 and remediation["median_days_to_fix"] == 1.0
    assert remediation["fixed"][0]["subject"] == "Deployment brand-uk/promo"
    text = run_cli("trend", str(tmp_path / "archive")).stdout
    assert "remediation: 1 resolved (median 1.0 days)" in text


# ---------------------------------------------------------------------- one entry on its own


def test_one_entry_verifies_on_its_own_and_names_its_tampering(
    nightly: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """What a regulator is handed: one entry folder (or a report inside it) and the public key."""
    entry = nightly / "ukgc" / "000002"
    for target in (entry, entry / "report.pdf"):
        code, out = _verify(target, keys["pub"])
        assert code == 0 and "OK - 1 entry: its digests and signature verified" in out, out
    copy = tmp_path / "ukgc" / "000002"
    shutil.copytree(entry, copy)
    data = bytearray((copy / "report.json").read_bytes())
    data[100] ^= 1
    (copy / "report.json").write_bytes(bytes(data))
    code, out = _verify(copy / "report.pdf", keys["pub"])
    assert code == 1 and "INTEGRITY ukgc/000002/report.json: altered" in out, out
    code, out = _verify(copy, keys["mallory_pub"])
    assert code == 1 and "which is not a given public key" in out, out


def test_a_report_outside_an_archive_entry_is_refused_clearly(tmp_path: Path, keys: dict[str, Path]) -> None:
    loose = tmp_path / "report.pdf"
    loose.write_bytes(b"%PDF-1.7\n")
    proc = run_cli("verify", str(loose), "--public-key", str(keys["pub"]))
    assert proc.returncode == 2 and "not inside an archive entry" in proc.stderr, proc.stderr
    proc = run_cli("verify", str(tmp_path))
    assert proc.returncode == 2 and "--public-key FILE or --certificate-identity" in proc.stderr


# ---------------------------------------------------------------------- Sigstore keyless

SIGSTORE = CORPUS / "sigstore"
STAGING_ROOT = SIGSTORE / "trusted_roots" / "staging.trusted_root.json"
SIGNER = ("william@yossarian.net", "https://github.com/login/oauth")


def _keyless_entry(tmp_path: Path, manifest: bytes) -> Path:
    """An entry whose manifest bytes carry a real keyless Sigstore signature (sigstore-python's bundle_v3 case:
    a Fulcio certificate for SIGNER, logged in the staging Rekor). There is no Fulcio offline to sign a real
    manifest, so the signed bytes are that case's artifact: the signature verifies, the manifest cannot parse."""
    entry = tmp_path / "archive" / "ukgc" / "000001"
    entry.mkdir(parents=True)
    (entry / "manifest.json").write_bytes(manifest)
    shutil.copy(SIGSTORE / "sigstore-python" / "bundle_v3.txt.sigstore", entry / "manifest.sigstore.json")
    return tmp_path / "archive"


def _verify_keyless(path: Path, identity: str, issuer: str) -> tuple[int, str]:
    proc = run_cli(
        "verify",
        str(path),
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        issuer,
        "--trusted-root",
        str(STAGING_ROOT),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def test_a_keyless_signature_verifies_against_the_trusted_root_and_the_identity(tmp_path: Path) -> None:
    signed = (SIGSTORE / "sigstore-python" / "bundle_v3.txt").read_bytes()
    archive_dir = _keyless_entry(tmp_path / "good", signed)
    code, out = _verify_keyless(archive_dir, *SIGNER)
    problems = [line for line in out.splitlines() if line.startswith("INTEGRITY")]
    # The signature, its certificate chain, SCT and Rekor inclusion are accepted; only the content is not ours.
    assert problems == ["INTEGRITY ukgc/000001/manifest.json: not a readable manifest (altered or truncated)"], out
    code, out = _verify_keyless(archive_dir, "mallory@example.com", SIGNER[1])
    assert code == 1
    assert (
        "INTEGRITY ukgc/000001/manifest.sigstore.json: signed keyless by william@yossarian.net "
        "(issuer https://github.com/login/oauth), which is not a given identity" in out
    ), out
    code, out = _verify_keyless(archive_dir, SIGNER[0], "https://token.actions.githubusercontent.com")
    assert code == 1 and "which is not a given identity" in out
    edited = _keyless_entry(tmp_path / "edited", signed.replace(b"DO NOT", b"DO    "))
    code, out = _verify_keyless(edited, *SIGNER)
    assert code == 1 and "manifest.sigstore.json: the Sigstore signature does not verify" in out, out


def test_keyless_signing_without_an_oidc_identity_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGSTORE_IDENTITY_TOKEN", "GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    proc = run_cli(
        "audit", str(DEMO), "--profile", "ukgc", "--out", str(tmp_path / "out"), "--format", "json",
        "--archive", str(tmp_path / "archive"), "--sign-keyless",
    )  # fmt: skip
    assert proc.returncode == 2 and "keyless signing needs an OIDC identity" in proc.stderr, proc.stderr
    assert not (tmp_path / "archive").exists()


def test_keyless_signing_that_cannot_reach_fulcio_writes_no_entry(tmp_path: Path) -> None:
    """A well-formed OIDC token, the Sigstore instance a ClientTrustConfig names, and no network: the run fails
    with exit 2 naming the instance, and nothing unsigned lands in the archive."""
    jwt = pytest.importorskip("jwt")
    now = int(time.time())
    claims = {"iss": "https://issuer.example", "sub": "ci@example.com", "aud": "sigstore", "iat": now, "exp": now + 600}
    token = jwt.encode(claims, "k" * 32, algorithm="HS256")
    config = SIGSTORE / "sigstore-python" / "trust_config" / "config.v1.json"
    proc = run_cli(
        "audit", str(DEMO), "--profile", "ukgc", "--out", str(tmp_path / "out"), "--format", "json",
        "--archive", str(tmp_path / "archive"), "--sign-keyless", "--sigstore-trust-config", str(config),
        env={"SIGSTORE_IDENTITY_TOKEN": token, "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"keyless signing with {config} failed" in proc.stderr and "Traceback" not in proc.stderr
    assert list((tmp_path / "archive").rglob("manifest.json")) == []


def test_a_backdated_run_is_refused_so_the_archive_runs_forward_in_time(
    nightly: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """A run with --as-of before the last entry's would fake remediation in the trend: refused, nothing written."""
    copy = _copy(nightly, tmp_path)
    proc = run_cli(
        "audit", str(DEMO), "--profile", "ukgc", "--out", str(tmp_path / "out"), "--format", "json",
        "--archive", str(copy), "--sign-key", str(keys["key"]), "--as-of", "2026-11-01T02:00:00Z",
    )  # fmt: skip
    assert proc.returncode == 2 and "the archive runs forward in time" in proc.stderr, proc.stderr
    assert archive.LocalStore(copy).entries("ukgc") == [1, 2, 3]


def test_verify_names_an_entry_whose_time_goes_backwards(
    keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written by a writer that skipped the forward-in-time rule (here: with it switched off), then verified."""
    key = archive.load_signing_key(keys["key"])
    meta = {"id": "ukgc", "version": "1", "sha256": "0" * 64}
    archive.append(tmp_path / "a", meta, {"report.json": b"{}"}, key, created_at="2026-11-27T02:00:00Z")
    monkeypatch.setattr(archive, "_created_at", lambda manifest: "")
    archive.append(tmp_path / "a", meta, {"report.json": b"{}"}, key, created_at="2026-11-01T02:00:00Z")
    monkeypatch.undo()
    code, out = _verify(tmp_path / "a", keys["pub"])
    assert code == 1 and "ukgc/000002: its report time 2026-11-01T02:00:00Z is before the previous entry's" in out, out
