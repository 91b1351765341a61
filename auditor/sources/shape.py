"""Type checks for the fields checks read, so that a check never meets ``replicas: "three"``.

The API server would reject these objects; a manifest on disk has had no such
gate. A problem names the field path and what was found. Objects with problems
become coverage gaps instead of evidence.
"""

from __future__ import annotations

from typing import Any

from auditor.kube import pod_spec_of, template_path_of

_INT_FIELDS = ("replicas", "minReadySeconds")
_CONTAINER_MAPS = ("securityContext", "resources", "readinessProbe", "livenessProbe", "startupProbe")
_CONTAINER_LISTS = ("ports", "env", "envFrom")


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _shown(value: Any) -> str:
    """The type, and for a scalar its (shortened) value: `string 'three'`, `mapping`."""
    if not isinstance(value, str | int | float | bool):
        return _type_name(value)
    text = repr(value)
    return f"{_type_name(value)} {text if len(text) <= 40 else text[:37] + '...'}"


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def expect(self, value: Any, kind: type | tuple[type, ...], path: str, what: str) -> bool:
        if value is None:
            return False
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.problems.append(f"{path} must be {what}, got {_shown(value)}")
        return ok


def shape_problems(obj: dict[str, Any]) -> list[str]:
    """The type errors in the fields the checks read, as ``path must be X, got Y`` sentences."""
    c = _Checker()
    meta = obj.get("metadata")
    if c.expect(meta, dict, "metadata", "a mapping"):
        assert isinstance(meta, dict)
        c.expect(meta.get("name"), str, "metadata.name", "a string")
        c.expect(meta.get("namespace"), str, "metadata.namespace", "a string")
        for field in ("labels", "annotations"):
            block = meta.get(field)
            if c.expect(block, dict, f"metadata.{field}", "a mapping"):
                assert isinstance(block, dict)
                for k, v in block.items():
                    c.expect(v, str, f"metadata.{field}.{k}", "a string")
    spec = obj.get("spec")
    if spec is not None and not c.expect(spec, dict, "spec", "a mapping"):
        return c.problems
    kind = obj.get("kind")
    if isinstance(spec, dict):
        for field in _INT_FIELDS:
            c.expect(spec.get(field), int, f"spec.{field}", "an integer")
    if kind == "Pod":
        _pod_spec(c, spec, "spec")
    elif (path := template_path_of(obj)) is not None:
        cur: Any = obj
        for i, key in enumerate(path):
            cur = cur.get(key) if isinstance(cur, dict) else None
            if cur is not None and not c.expect(cur, dict, ".".join(path[: i + 1]), "a mapping"):
                return c.problems
        if isinstance(cur, dict):
            _pod_spec(c, cur.get("spec"), ".".join(path) + ".spec")
    return c.problems


def _pod_spec(c: _Checker, spec: Any, path: str) -> None:
    if not c.expect(spec, dict, path, "a mapping"):
        return
    assert isinstance(spec, dict)
    for field in ("securityContext",):
        c.expect(spec.get(field), dict, f"{path}.{field}", "a mapping")
    for field in ("volumes",):
        c.expect(spec.get(field), list, f"{path}.{field}", "a list")
    for field in ("initContainers", "containers", "ephemeralContainers"):
        containers = spec.get(field)
        if not c.expect(containers, list, f"{path}.{field}", "a list"):
            continue
        assert isinstance(containers, list)
        for i, container in enumerate(containers):
            cpath = f"{path}.{field}[{i}]"
            if not c.expect(container, dict, cpath, "a mapping"):
                continue
            assert isinstance(container, dict)
            c.expect(container.get("name"), str, f"{cpath}.name", "a string")
            c.expect(container.get("image"), str, f"{cpath}.image", "a string")
            for m in _CONTAINER_MAPS:
                c.expect(container.get(m), dict, f"{cpath}.{m}", "a mapping")
            for lst in _CONTAINER_LISTS:
                c.expect(container.get(lst), list, f"{cpath}.{lst}", "a list")


# YAML 1.1 boolean words, which Kubernetes' decoder (go-yaml v2) still reads as booleans in boolean fields.
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"})
_POD_BOOLS = ("hostNetwork", "hostPID", "hostIPC", "automountServiceAccountToken")
_SC_BOOLS = ("runAsNonRoot", "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem")


def _fix(block: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(block, dict):
        return
    for key in keys:
        value = block.get(key)
        if isinstance(value, str):
            if value in _TRUE:
                block[key] = True
            elif value in _FALSE:
                block[key] = False


def _fix_security_context(sc: Any) -> None:
    _fix(sc, _SC_BOOLS)
    if isinstance(sc, dict):
        _fix(sc.get("windowsOptions"), ("hostProcess",))


def normalize_booleans(obj: dict[str, Any]) -> None:
    """Read `privileged: yes` as Kubernetes does (true), so a YAML 1.1 spelling cannot slip past a check."""
    kind = obj.get("kind")
    if kind in ("ServiceAccount",):
        _fix(obj, ("automountServiceAccountToken",))
    elif kind == "ConfigMap" or kind == "Secret":
        _fix(obj, ("immutable",))
    elif kind == "PriorityClass":
        _fix(obj, ("globalDefault",))
    spec = pod_spec_of(obj)
    if not isinstance(spec, dict):
        return
    _fix(spec, _POD_BOOLS)
    _fix_security_context(spec.get("securityContext"))
    for field in ("initContainers", "containers", "ephemeralContainers"):
        containers = spec.get(field)
        if isinstance(containers, list):
            for c in containers:
                if isinstance(c, dict):
                    _fix_security_context(c.get("securityContext"))
