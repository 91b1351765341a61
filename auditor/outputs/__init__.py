"""Outputs: renderings of one report model. JSON is the source of truth."""
