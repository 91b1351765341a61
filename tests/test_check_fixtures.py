"""Every check ships pass and fail fixtures; one parametrised test walks them (fixtures/checks/<id>/)."""

from __future__ import annotations

import re

import pytest

from auditor.catalog import all_checks
from auditor.models import Status

from .conftest import FIXTURES, collect_fixture, run_check

CHECK_IDS = [c.meta.id for c in all_checks()]


def test_every_check_has_pass_and_fail_fixtures() -> None:
    folders = {p.name for p in (FIXTURES / "checks").iterdir() if p.is_dir()}
    assert set(CHECK_IDS) == folders
    for cid in CHECK_IDS:
        assert (FIXTURES / "checks" / cid / "pass.yaml").is_file()
        assert (FIXTURES / "checks" / cid / "fail.yaml").is_file()


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_pass_fixture_passes(check_id: str) -> None:
    ev = collect_fixture(FIXTURES / "checks" / check_id / "pass.yaml")
    assert not ev.gaps
    results = run_check(check_id, ev)
    assert any(r.status is Status.PASS for r in results), results
    bad = [r for r in results if r.status in (Status.FAIL, Status.ERROR, Status.NOT_ASSESSED)]
    assert not bad, bad


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_fail_fixture_fails_with_expected_facets(check_id: str) -> None:
    path = FIXTURES / "checks" / check_id / "fail.yaml"
    m = re.search(r"^# expect-facets: (.+)$", path.read_text(), re.MULTILINE)
    assert m, f"{path} declares no expect-facets"
    expected = {f.strip() for f in m.group(1).split(",")}
    ev = collect_fixture(path)
    assert not ev.gaps
    results = run_check(check_id, ev)
    failing = [r for r in results if r.status is Status.FAIL]
    assert failing, results
    seen = {f for r in failing for f in r.facets}
    assert expected <= seen, f"expected facets {expected}, saw {seen}"
    declared = set(next(c for c in all_checks() if c.meta.id == check_id).meta.facets)
    assert seen <= declared, f"undeclared facets {seen - declared}"
    assert all(r.message for r in failing)
