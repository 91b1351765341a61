"""The distribution: the wheel builds without setuptools warnings and carries the data the product reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from .conftest import ROOT


def _source_tree(dest: Path) -> Path:
    """What the build reads (pyproject's package-dir), copied so the build leaves the checkout untouched."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("auditor", "checks", "report_templates"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    shutil.copytree(ROOT / "fixtures" / "demo", dest / "fixtures" / "demo", ignore=ignore)
    return dest


def test_wheel_builds_cleanly_and_ships_the_data(tmp_path: Path) -> None:
    src = _source_tree(tmp_path / "src")
    out = tmp_path / "wheel"
    # --no-build-isolation: the setuptools from the dev extra, no download. pip's own notices (a newer pip,
    # running as root) are not the build's warnings.
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps"]
    proc = subprocess.run(
        [*pip_wheel, "--no-build-isolation", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    warnings = [line for line in log.splitlines() if re.search(r"warning", line, re.IGNORECASE)]
    assert warnings == [], "\n".join(warnings)

    (wheel,) = out.glob("auditor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "auditor/data/CHECKLIST.md",
        "auditor/data/report.schema.json",
        "auditor/data/profile.schema.json",
        "auditor/py.typed",
        "auditor_checks/py.typed",
        "auditor_report_templates/report.html.j2",
        "auditor_report_templates/report.css",
        "auditor_demo/README.md",
    }
    expected |= {f"auditor/data/profiles/{p.name}" for p in (ROOT / "auditor" / "data" / "profiles").glob("*.yaml")}
    expected |= {f"auditor_demo/manifests/{p.name}" for p in (ROOT / "fixtures" / "demo" / "manifests").glob("*.yaml")}
    expected |= {f"auditor_demo/profiles/{p.name}" for p in (ROOT / "fixtures" / "demo" / "profiles").glob("*.yaml")}
    assert expected <= names, sorted(expected - names)
    # every Python module of the source tree is in the wheel
    for folder, package in (("auditor", "auditor"), ("checks", "auditor_checks")):
        for module in (ROOT / folder).rglob("*.py"):
            assert f"{package}/{module.relative_to(ROOT / folder).as_posix()}" in names


def test_pdf_needs_no_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.lower().startswith("weasyprint") for dep in project["dependencies"])
    assert project["optional-dependencies"]["pdf"] == []  # kept as an alias for existing install commands
