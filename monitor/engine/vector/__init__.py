"""The vectorised exact engine (placeholder docstring, written below)."""

from monitor.engine.vector.engine import VectorEngine
from monitor.engine.vector.frame import Frame, Note
from monitor.engine.vector.risk import account_risk

__all__ = ["Frame", "Note", "VectorEngine", "account_risk"]
