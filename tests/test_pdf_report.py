"""The PDF a regulator accepts: read back with poppler (pdftotext, pdfinfo), as a reader sees it.

Also the inputs only the PDF and report.json carry: the profile's sign-off, the remediation plan
(owner, management response, due date per finding) and the git revision of the manifests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from auditor.checklist import SECTIONS
from auditor.outputs.json_report import report_schema
from auditor.outputs.pdf_report import covers_in_words, scope_in_words, view_model

from .conftest import AS_OF, FIXTURES, run_audit, run_cli

DEMO = FIXTURES / "demo"
PLAN = DEMO / "profiles" / "remediation-plan.yaml"

SIGNED_PROFILE = """\
extends: ukgc
version: "2026.11-acme"
parameters:
  allowed_registries: [registry.acme-gaming.example]
  cluster_admin_subjects: ["Group:acme:platform-breakglass"]
waivers:
  - id: W-2026-014
    check: pod-read-only-root-fs
    subject: {namespace: brand-uk, kind: Deployment, name: game-gateway}
    reason: vendor SDK writes its cache to the root fs; fixed in SDK 5.2
    approver: J. Okafor, Head of Information Security
    ticket: SEC-2291
    expires: "2027-06-30"
signoff:
  prepared_by: {name: Priya Raman, role: Compliance analyst, date: 2026-11-27}
  reviewed_by: {name: Tomasz Wojcik, role: Head of Platform Engineering}
  approved_by: {name: Grace Mensah, role: MLRO and compliance director, date: "2026-11-30"}
"""


def _pdftotext(path: Path, *args: str) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed; scripts/setup.sh installs it")
    return subprocess.run(["pdftotext", *args, str(path), "-"], capture_output=True, text=True, check=True).stdout


def _flat(path: Path) -> str:
    """The PDF's text in reading order with line breaks and wrapping removed."""
    return " ".join(_pdftotext(path).split())


def _info(path: Path) -> dict[str, str]:
    out = subprocess.run(["pdfinfo", "-isodates", str(path)], capture_output=True, text=True, check=True).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A UKGC report of the demo platform with a signed-off profile and the demo remediation plan."""
    tmp = tmp_path_factory.mktemp("signed")
    profile = tmp / "acme-ukgc.yaml"
    profile.write_text(SIGNED_PROFILE)
    proc = run_audit(DEMO / "manifests", [str(profile)], tmp / "out", "json,pdf", "--remediation-plan", str(PLAN))
    assert proc.returncode == 1, proc.stderr
    return tmp / "out" / "ukgc"


def test_page_numbers_read_back_as_page_n_of_m(signed: Path) -> None:
    text = _pdftotext(signed / "report.pdf", "-layout")
    pages = int(_info(signed / "report.pdf")["Pages"])
    numbers = [(int(a), int(b)) for a, b in re.findall(r"Page (\d+) of (\d+)", text)]
    assert numbers == [(n, pages) for n in range(1, pages + 1)]


def test_no_stylesheet_text_leaks_into_the_pages(signed: Path) -> None:
    text = _pdftotext(signed / "report.pdf")
    for leak in ("@page", "font-family", "counter(", "string-set", "&quot;", "&#34;", "{ ", "break-after"):
        assert leak not in text, leak


def test_pdf_metadata_names_the_report_and_the_run_time(signed: Path) -> None:
    info = _info(signed / "report.pdf")
    report = json.loads((signed / "report.json").read_text())
    assert report["report"]["id"] in info["Title"]
    assert "Great Britain" in info["Title"]
    assert info["Author"] == "Priya Raman"
    assert info["CreationDate"] == AS_OF == report["report"]["generated_at"]
    assert info["Creator"].startswith("auditor ")
    assert "ukgc" in info["Subject"]


def test_cover_says_scope_kind_period_and_input_revision_in_words(signed: Path) -> None:
    text = _flat(signed / "report.pdf")
    report = json.loads((signed / "report.json").read_text())
    assert (
        "Namespaces labelled market=uk, except kube-system, kube-public and kube-node-lease; "
        "cluster-scoped objects (RBAC, priority classes) included." in text
    )
    assert '"match_labels"' not in text and "{" not in text.split("Appendix: check catalog")[0]
    assert "An automated assessment of declared configuration" in text
    assert f"Point in time: the configuration as collected at {AS_OF}, assessed at {AS_OF}" in text
    source = report["report"]["evidence"]["sources"][0]
    assert re.fullmatch(r"[0-9a-f]{40}", source["git_commit"])  # the fixtures live in this git checkout
    flat_nospace = "".join(text.split())
    assert source["git_commit"] in flat_nospace
    assert report["report"]["evidence"]["sha256"] in flat_nospace


def test_new_sections_and_glossary(signed: Path) -> None:
    text = _flat(signed / "report.pdf")
    for heading in (
        "Methodology and limitations",
        "What was read",
        "What these sources cannot show",
        "Glossary",
        "Sign-off",
        "Blocking failures",
        "Blocking evidence gaps",
        "Results per checklist item",
        "Failing findings by check and namespace",
        "Appendix: check catalog",
    ):
        assert heading in text, heading
    # Limitations follow from the evidence kinds: this run read Kubernetes objects only.
    for unread in ("Live cluster state", "Registry evidence", "Git release history", "Backup and drill records"):
        assert unread in text.split("What these sources cannot show")[1].split("Glossary")[0], unread
    glossary = text.split("Glossary")[1].split("Results per checklist item")[0]
    for word in ("pass", "fail", "waived", "not applicable", "not assessed", "error"):
        assert word in glossary, word
    for sev in ("critical", "high", "medium", "low", "info"):
        assert sev.upper() in glossary or sev in glossary, sev


def test_signoff_names_come_from_the_profile(signed: Path) -> None:
    report = json.loads((signed / "report.json").read_text())
    assert report["report"]["signoff"]["prepared_by"] == {
        "name": "Priya Raman",
        "role": "Compliance analyst",
        "date": "2026-11-27",
    }
    signoff = _flat(signed / "report.pdf").split("Sign-off")[-1].split("Appendix: check catalog")[0]
    order = ["Prepared by", "Priya Raman", "Reviewed by", "Tomasz Wojcik", "Approved by", "Grace Mensah"]
    assert [signoff.index(t) for t in order] == sorted(signoff.index(t) for t in order)
    for text in ("Compliance analyst", "2026-11-27", "Head of Platform Engineering", "2026-11-30"):
        assert text in signoff, text


def test_invalid_signoff_names_the_field(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("extends: ukgc\nsignoff:\n  approved_by: {role: Director}\n")
    proc = run_audit(DEMO / "manifests", [str(profile)], tmp_path / "o")
    assert proc.returncode == 2
    assert "signoff.approved_by" in proc.stderr and "'name' is a required property" in proc.stderr


def test_remediation_plan_fills_owner_response_and_due(signed: Path) -> None:
    report = json.loads((signed / "report.json").read_text())
    jsonschema.validate(report, report_schema())
    promo = next(f for f in report["findings"] if f["check"] == "image-pinned-digest")
    assert promo["remediation_plan"] == {
        "id": "RP-2026-031",
        "owner": "Promotions squad (A. Mensah, engineering lead)",
        "response": (
            "Accepted. The promo release pipeline will resolve the tag to its digest at build time, "
            "as the other services already do; the next promo release is held until then."
        ),
        "due": "2026-12-11",
    }
    plan = report["report"]["remediation_plan"]
    assert plan["source"] == str(PLAN) and plan["unused"] == ["RP-2026-032", "RP-2026-033"]
    findings = _flat(signed / "report.pdf").split("Failing findings by check and namespace")[1].split("Waivers")[0]
    assert "Owner: Promotions squad (A. Mensah, engineering lead)" in findings
    assert "Response: Accepted. The promo release pipeline will resolve the tag" in findings
    assert "Due: 2026-12-11 (RP-2026-031)" in findings


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("entries:\n  - {id: RP-1, check: image-pinned-digest, owner: A, response: B, due: 2026-13-01}\n",
         "entries[0].due: a date (YYYY-MM-DD) is required, got '2026-13-01'"),
        ("entries:\n  - {id: RP-1, check: no-such-check, owner: A, response: B, due: 2026-12-01}\n",
         "entries[0].check: 'no-such-check' is not a check id"),
        ("entries:\n  - {id: RP-1, item: image.pinned-digest, response: B, due: 2026-12-01}\n",
         "entries[0].owner: a non-empty string is required (missing)"),
        ("entries:\n  - {id: RP-1, owner: A, response: B, due: 2026-12-01}\n",
         "entries[0]: give check (a check id) or item (a checklist key), or both"),
        ("entries:\n  - {id: RP-1, check: pdb-present, subject: {pod: x}, owner: A, response: B, due: 2026-12-01}\n",
         "entries[0].subject.pod: unknown field"),
        ("plan: []\n", "entries: a remediation plan is a YAML mapping with a list under `entries`"),
        ("entries: [\n", "remediation plan is not valid YAML"),
    ],
)  # fmt: skip
def test_remediation_plan_errors_name_the_file_and_field(tmp_path: Path, plan: str, expected: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(plan)
    proc = run_audit(DEMO / "manifests", ["ukgc"], tmp_path / "o", "json", "--remediation-plan", str(path))
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_missing_remediation_plan_is_an_input_error(tmp_path: Path) -> None:
    proc = run_audit(DEMO / "manifests", ["ukgc"], tmp_path / "o", "json", "--remediation-plan", "nope.yaml")
    assert proc.returncode == 2 and "nope.yaml: cannot read remediation plan" in proc.stderr


def test_controls_once_per_section_with_legend_and_notes(signed: Path) -> None:
    text = _flat(signed / "report.pdf")
    results = text.split("Results per checklist item")[1].split("Failing findings by check and namespace")[0]
    # 5.23 maps to the supply-chain family only: printed once, in the Supply chain section, not under 6 items.
    assert results.count("Annex A 5.23") == 1
    assert "cloud services; the only control added in 2022" in results  # the profile's note
    assert "all items in this section" in results
    for status in ("confirmed", "secondary", "unconfirmed"):
        assert status in text.split("Glossary")[1].split("Results per checklist item")[0]


def test_waiver_covers_in_words_and_ids_unbroken(signed: Path) -> None:
    text = _flat(signed / "report.pdf")
    assert "check pod-read-only-root-fs for Deployment game-gateway in namespace brand-uk" in text
    lines = _pdftotext(signed / "report.pdf").splitlines()
    assert any("W-2026-014" in line for line in lines)
    assert not any(line.rstrip().endswith(("W-", "W-2026-", "W-2026")) for line in lines)


def test_no_near_empty_pages(signed: Path) -> None:
    pages = _pdftotext(signed / "report.pdf", "-layout").split("\f")
    pages = [p for p in pages if p.strip()]
    sparse = [i + 1 for i, p in enumerate(pages[:-1]) if len([ln for ln in p.splitlines() if ln.strip()]) < 25]
    assert not sparse, f"pages with little on them: {sparse}"


def test_words_for_scopes_and_waivers() -> None:
    assert scope_in_words({"selector": {"namespaces": {"all": True}}, "cluster_scoped": False}) == (
        "All namespaces; cluster-scoped objects (RBAC, priority classes) excluded."
    )
    names = scope_in_words({"selector": {"namespaces": {"names": ["b", "a"]}}, "cluster_scoped": True})
    assert names.striptags() == ("The namespace(s) a and b; cluster-scoped objects (RBAC, priority classes) included.")
    glob = covers_in_words({"item": "pdb.present", "subject": {"namespace": "brand-*", "kind": "Deployment"}})
    assert glob.striptags() == "every check of item pdb.present for Deployment in namespaces matching brand-*"
    anything = covers_in_words({"check": "pdb-present", "subject": {}})
    assert anything.striptags() == "check pdb-present for any object in any namespace"


def test_chart_has_a_row_per_checklist_section(signed: Path) -> None:
    report = json.loads((signed / "report.json").read_text())
    chart = view_model(report, "0" * 64)["chart"]
    assert [r["label"] for r in chart["rows"]] == list(SECTIONS)
    assert len(SECTIONS) == 8 and chart["height"] >= 8 * chart["bar_h"]
    summary = _flat(signed / "report.pdf").split("Executive summary")[1].split("Blocking failures")[0]
    for section in SECTIONS:
        assert section in summary, section


def test_git_commit_of_manifests_is_read_without_git_and_kept_in_the_snapshot(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/release\n")
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{commit} refs/heads/release\n")
    (repo / "rendered").mkdir()
    shutil.copy(DEMO / "manifests" / "uk.yaml", repo / "rendered" / "uk.yaml")
    snapshot = tmp_path / "evidence.json"
    assert (
        run_cli("collect", "--manifests", str(repo / "rendered"), "--out", str(snapshot), "--as-of", AS_OF).returncode
        == 0
    )
    sources = json.loads(snapshot.read_text())["sources"]
    assert sources == [{"type": "manifests", "target": str(repo / "rendered"), "git_commit": commit}]
    direct = run_audit(repo / "rendered", ["ukgc"], tmp_path / "a")
    from_snapshot = run_cli(
        "audit", "--evidence", str(snapshot), "--profile", "ukgc", "--out", str(tmp_path / "b"),
        "--format", "json", "--as-of", AS_OF,
    )  # fmt: skip
    assert direct.returncode == from_snapshot.returncode
    a = (tmp_path / "a" / "ukgc" / "report.json").read_bytes()
    assert a == (tmp_path / "b" / "ukgc" / "report.json").read_bytes()
    assert json.loads(a)["report"]["evidence"]["sources"][0]["git_commit"] == commit

    # A linked work tree (`.git` is a file) and a detached HEAD.
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {repo / '.git'}\n")
    (repo / ".git" / "HEAD").write_text("fedcba9876543210fedcba9876543210fedcba98\n")
    shutil.copy(DEMO / "manifests" / "uk.yaml", tmp_path / "wt" / "uk.yaml")
    run_cli("collect", "--manifests", str(tmp_path / "wt" / "uk.yaml"), "--out", str(snapshot), "--as-of", AS_OF)
    assert json.loads(snapshot.read_text())["sources"][0]["git_commit"] == "fedcba9876543210fedcba9876543210fedcba98"


def test_manifests_outside_a_git_work_tree_have_no_commit(tmp_path: Path) -> None:
    shutil.copy(DEMO / "manifests" / "uk.yaml", tmp_path / "uk.yaml")
    snapshot = tmp_path / "evidence.json"
    run_cli("collect", "--manifests", str(tmp_path / "uk.yaml"), "--out", str(snapshot), "--as-of", AS_OF)
    assert json.loads(snapshot.read_text())["sources"] == [{"type": "manifests", "target": str(tmp_path / "uk.yaml")}]


def _detach(pdf: Path, out: Path) -> dict[str, bytes]:
    """The PDF's embedded files, extracted by poppler's pdfdetach (an independent reader)."""
    if not shutil.which("pdfdetach"):
        pytest.skip("pdfdetach (poppler-utils) not installed; scripts/setup.sh installs it")
    out.mkdir()
    subprocess.run(["pdfdetach", "-saveall", "-o", str(out), str(pdf)], check=True, capture_output=True)
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_pdf_a_3b_carries_report_json_and_the_evidence_as_associated_files(signed: Path, tmp_path: Path) -> None:
    """PDF/A-3b: the JSON the PDF renders and the evidence snapshot travel inside it, byte for byte, as associated
    files (/AF) with their relationship, fixed dates, and the PDF/A identification and output intent."""
    pikepdf = pytest.importorskip("pikepdf")
    pdf_path = signed / "report.pdf"
    files = _detach(pdf_path, tmp_path / "detached")
    assert sorted(files) == ["evidence.json", "report.json"]
    assert files["report.json"] == (signed / "report.json").read_bytes()
    evidence = json.loads(files["evidence.json"])
    report = json.loads(files["report.json"])
    assert evidence["digest"] == report["report"]["evidence"]["sha256"]
    with pikepdf.open(pdf_path) as pdf:
        with pdf.open_metadata() as xmp:
            assert (xmp.get("pdfaid:part"), xmp.get("pdfaid:conformance")) == ("3", "B")
        assert str(pdf.Root.OutputIntents[0].S) == "/GTS_PDFA1"
        associated = {str(f.UF): str(f.AFRelationship) for f in pdf.Root.AF}
        assert len(pdf.Root.AF) == 2  # each file once (WeasyPrint lists them twice; the finisher dedupes)
        assert associated == {"report.json": "/Source", "evidence.json": "/Data"}
        for f in pdf.Root.AF:
            params = f.EF.F.Params
            assert str(params.CreationDate) == str(params.ModDate) == "D:" + re.sub(r"[-:T]", "", AS_OF)
            assert str(f.EF.F.Filter) == "/FlateDecode"  # compressed inside the PDF
    text = _flat(pdf_path)
    digest = hashlib.sha256(files["evidence.json"]).hexdigest()
    assert f"evidence.json, {len(files['evidence.json']):,} bytes, sha256 {digest}" in text


def test_pdf_a_3b_passes_verapdf(signed: Path) -> None:
    """The validator regulators' archives use. scripts/verapdf.sh fetches veraPDF from Maven Central once."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "verapdf.sh"
    if not shutil.which("java") and not os.environ.get("CI"):
        pytest.skip("veraPDF needs Java and scripts/verapdf.sh")
    proc = subprocess.run(["bash", str(script), str(signed / "report.pdf")], capture_output=True, text=True)
    if proc.returncode == 2 and not os.environ.get("CI"):  # in CI, scripts/setup.sh has fetched it: never skip
        pytest.skip(f"veraPDF could not be set up here: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_evidence_snapshot_too_large_to_embed_is_said_so(
    signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.outputs import pdf_report

    monkeypatch.setattr(pdf_report, "MAX_EMBEDDED_EVIDENCE", 1000)
    report = json.loads((signed / "report.json").read_text())
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(pdf_report.PdfOutput().render(report, json_sha256="0" * 64, evidence=b"{}" * 1000))
    assert sorted(_detach(pdf, tmp_path / "detached")) == ["report.json"]
    assert "The evidence snapshot is too large to embed" in _flat(pdf)
