"""Agreement with kube-score's own test fixtures, assertion by assertion (shared/corpus/kube-score/expected.json).

kube-score's `warn` grades are advisory and counted separately. Every disagreement on a
pass/fail grade must be one of the deliberate differences below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .conftest import require_corpus
from .kube_score_oracle import Case, Outcome, judge, load_cases

JUSTIFIED: list[tuple[str, Callable[[Case], bool], str, int]] = [
    (
        "single-replica PDB",
        lambda c: c.check_name in ("Deployment has PodDisruptionBudget", "StatefulSet has PodDisruptionBudget"),
        "these workloads omit replicas (one replica). pdb.present requires a PDB from two replicas, so the "
        "no-match fixtures are not applicable here; where a PDB does match, its minAvailable: 2 allows no eviction "
        "of the single replica, which hangs node drains and fails pdb.present. kube-score only checks that a PDB exists.",
        11,
    ),
    (
        "limits not required by configuration",
        lambda c: c.test.endswith(("ResourceLimitCpuNotRequired", "ResourceNoLimitRequired")),
        "kube-score runs these with IgnoreContainerCpuLimitRequirement / IgnoreContainerMemoryLimitRequirement; "
        "pod.resources requires CPU and memory limits.",
        2,
    ),
    (
        "legacy seccomp annotation",
        lambda c: c.check_name == "Container Seccomp Profile" and "pod-seccomp-annotated" in c.files[0],
        "kube-score accepts the alpha seccomp annotation; the securityContext.seccompProfile field replaced it in "
        "Kubernetes 1.19 and the annotation has no effect on current clusters, so pod.seccomp requires the field.",
        2,
    ),
]


def _explain(o: Outcome) -> str | None:
    return next((name for name, pred, _r, _n in JUSTIFIED if pred(o.case)), None)


def test_agreement_with_kube_score_case_by_case() -> None:
    root = require_corpus("kube-score")
    outcomes = [judge(root, c) for c in load_cases(root)]
    graded = [o for o in outcomes if o.agreed is not None]
    disagreements = [o for o in graded if not o.agreed]
    unexplained = [o for o in disagreements if _explain(o) is None]
    assert not unexplained, "\n".join(
        f"{o.case.test} {o.case.check_name}: kube-score {o.case.expected}, auditor {o.ours}" for o in unexplained
    )
    assert Counter(_explain(o) for o in disagreements) == {name: n for name, _p, _r, n in JUSTIFIED}
    assert len(graded) == 41
    print(
        f"\nkube-score: {len(graded)} graded cases, {len(graded) - len(disagreements)} agreed, {len(disagreements)} justified differences, {len(outcomes) - len(graded)} advisory warnings"
    )
