"""Record the demo platform's registry evidence (fixtures/demo/registry.json) from the test registry.

`auditor demo` runs without a network: it adds this recording to the evidence it reads from the demo
manifests, so that the demo reports show the supply-chain section. The recording is real: the demo
images as scripts/testenv's registry part builds, signs and attests them with cosign, verified by
the auditor's registry source. The public key they were signed with is copied beside it
(fixtures/demo/keys/acme-release.pub), and the demo profiles trust that key.

    scripts/testenv up registry && .venv/bin/python scripts/record_demo_registry.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "demo"


def main() -> int:
    env_text = subprocess.run(
        [str(REPO / "scripts" / "testenv"), "env"], capture_output=True, text=True, check=True
    ).stdout
    env = dict(line.split("=", 1) for line in env_text.split() if "=" in line)
    registry, trust = env.get("AUDITOR_TEST_REGISTRY"), env.get("AUDITOR_TEST_TRUST_DIR")
    if not registry or not trust:
        print("record_demo_registry: the registry part is not up (scripts/testenv up registry)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "evidence.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "auditor",
                "collect",
                str(DEMO / "manifests"),
                "--out",
                str(out),
                "--registry-mirror",
                f"registry.acme-gaming.example={registry}",
                "--insecure-registry",
                registry,
                "--trust-key",
                str(Path(trust) / "cosign.pub"),
                "--no-registry-cache",
                "-q",
            ],
            check=True,
        )
        section = json.loads(out.read_text())["registry"]
    text = json.dumps(section, indent=1, sort_keys=True)
    if registry in text:
        print(f"record_demo_registry: the recording names the loopback registry {registry}", file=sys.stderr)
        return 1
    for key in section["trust"]["keys"]:
        key["name"] = "acme-release.pub"
        key["origin"] = "profile"  # the demo profiles name this key; no --trust-key is given in the demo
    text = json.dumps(section, indent=1, sort_keys=True).replace(
        '"key_name": "cosign.pub"', '"key_name": "acme-release.pub"'
    )
    (DEMO / "registry.json").write_text(text + "\n")
    (DEMO / "keys").mkdir(exist_ok=True)
    shutil.copyfile(Path(trust) / "cosign.pub", DEMO / "keys" / "acme-release.pub")
    print(f"wrote {DEMO / 'registry.json'} ({len(section['images'])} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
