"""Artifact kinds a system's ``artifacts()`` (or ``final()``) may return, besides plain uint8 arrays.

A system returns ``{name: value}`` where value is one of:
- ``np.ndarray`` uint8 of shape (H, W, 3|4): an image, saved as ``figures/<name>.png``;
- ``np.ndarray`` uint8 of shape (T, H, W, 3|4): a video, saved as ``videos/<name>.mp4`` (GIF fallback);
- :class:`Heatmap`: a labelled table, saved as ``tables/<name>.json`` and drawn as ``figures/<name>.png``;
- :class:`Svg`: a vector drawing (an SVG document as text), saved as ``figures/<name>.svg``;
- :class:`TextTable`: a table of text (e.g. generated sentences side by side), saved as ``tables/<name>.json``
  and shown on the report pages as an HTML table.
Arrays of any framework that convert with ``np.asarray`` (JAX, PyTorch CPU tensors) are accepted. Systems never
choose paths; the run loop writes artifacts (``core/artifact_io.py``). ``Heatmap`` is defined in ``viz`` (it is a
drawing spec: ``viz/table.py``) and re-exported here, where systems look for the artifact kinds. A table file
holding ``"kind": "text_table"`` is a :class:`TextTable`, any other a :class:`Heatmap` (:func:`table_from_json`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from athanor.viz.table import Heatmap

__all__ = ["Heatmap", "Svg", "TextTable", "table_from_json"]

TEXT_TABLE = "text_table"  # the ``kind`` marker of a TextTable's JSON


@dataclasses.dataclass(frozen=True)
class Svg:
    """An SVG document (``text`` starts with ``<svg`` or an XML declaration)."""

    text: str

    def __post_init__(self):
        head = self.text.lstrip()[:5] if isinstance(self.text, str) else ""
        if head not in ("<svg ", "<svg>", "<?xml"):
            raise ValueError("Svg needs the text of an SVG document, starting with '<svg' or '<?xml'")


@dataclasses.dataclass(frozen=True)
class TextTable:
    """A table of strings with a header row (lists are accepted and stored as tuples)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""

    def __post_init__(self):
        if not isinstance(self.title, str):
            raise TypeError(f"TextTable title must be a str, got {type(self.title).__name__}")
        columns = None if isinstance(self.columns, str) else tuple(self.columns)
        if columns is None or not all(isinstance(c, str) for c in columns):
            raise TypeError(f"TextTable '{self.title}': columns must be a sequence of str, got {self.columns!r}")
        if not columns:
            raise ValueError(f"TextTable '{self.title}': needs at least one column")
        if isinstance(self.rows, str):
            raise TypeError(f"TextTable '{self.title}': rows must be a sequence of rows, got a str")
        rows = []
        for i, row in enumerate(self.rows):
            if isinstance(row, str):
                raise TypeError(f"TextTable '{self.title}': row {i} is a str; give each row as a sequence of "
                                "cells")
            row = tuple(row)
            if len(row) != len(columns):
                raise ValueError(f"TextTable '{self.title}': row {i} has {len(row)} cells, expected "
                                 f"{len(columns)} (one per column)")
            for j, cell in enumerate(row):
                if not isinstance(cell, str):
                    raise TypeError(f"TextTable '{self.title}': cell ({i}, {j}) is a {type(cell).__name__}, "
                                    "not a str; convert it with str() or format() first")
            rows.append(row)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", tuple(rows))

    def to_json(self) -> dict:
        return {"kind": TEXT_TABLE, "title": self.title, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows]}

    @classmethod
    def from_json(cls, d: dict) -> TextTable:
        if d.get("kind") != TEXT_TABLE:
            raise ValueError(f"not a text table: kind is {d.get('kind')!r}, expected {TEXT_TABLE!r}")
        return cls(columns=d["columns"], rows=d["rows"], title=d.get("title", ""))


def table_from_json(d: Any) -> Heatmap | TextTable:
    """A ``tables/<name>.json`` file's content: a :class:`TextTable` if marked so, else a :class:`Heatmap`."""
    if not isinstance(d, dict):
        raise TypeError(f"a table file holds a JSON object, found {type(d).__name__}")
    return TextTable.from_json(d) if d.get("kind") == TEXT_TABLE else Heatmap.from_json(d)
