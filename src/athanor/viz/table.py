"""The labelled table: values with row and column labels and how to draw them (NumPy only, no matplotlib).

A system returns a :class:`Heatmap` among its artifacts; it is written as ``tables/<name>.json`` and drawn by
``viz.figures.heatmap`` as ``figures/<name>.png``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["Heatmap"]


@dataclasses.dataclass(frozen=True)
class Heatmap:
    """A 2-D table of numbers with row and column labels (e.g. a 6x5 frequency table)."""

    values: np.ndarray  # (R, C) float
    rows: Sequence[str]
    cols: Sequence[str]
    title: str = ""
    fmt: str = ".2f"  # number format written into each cell
    cmap: str = "viridis"
    vmin: float | None = None
    vmax: float | None = None

    def __post_init__(self):
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2 or values.shape != (len(self.rows), len(self.cols)):
            raise ValueError(
                f"Heatmap '{self.title}': values shape {values.shape} does not match "
                f"{len(self.rows)} rows x {len(self.cols)} cols"
            )
        object.__setattr__(self, "values", values)

    def to_json(self) -> dict:
        """The table as plain JSON types (non-finite cells stay float; writers map them to null)."""
        return {
            "title": self.title, "rows": list(self.rows), "cols": list(self.cols),
            "values": self.values.tolist(), "fmt": self.fmt, "cmap": self.cmap,
            "vmin": self.vmin, "vmax": self.vmax,
        }

    @classmethod
    def from_json(cls, d: dict) -> Heatmap:
        # JSON null (a non-finite cell) becomes NaN under the float dtype
        return cls(values=np.asarray(d["values"], dtype=np.float64), rows=d["rows"], cols=d["cols"],
                   title=d.get("title", ""), fmt=d.get("fmt", ".2f"), cmap=d.get("cmap", "viridis"),
                   vmin=d.get("vmin"), vmax=d.get("vmax"))
