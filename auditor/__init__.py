"""auditor: release-checklist compliance auditor for Kubernetes platforms that move money."""

__version__ = "0.1.0"
