"""Artifact kinds a system's ``artifacts()`` (or ``final()``) may return, besides plain uint8 arrays.

A system returns ``{name: value}`` where value is one of:
- ``np.ndarray`` uint8 of shape (H, W, 3|4): an image, saved as ``figures/<name>.png``;
- ``np.ndarray`` uint8 of shape (T, H, W, 3|4): a video, saved as ``videos/<name>.mp4`` (GIF fallback);
- :class:`Heatmap`: a labelled table, saved as ``tables/<name>.json`` and drawn as ``figures/<name>.png``;
- :class:`Svg`: a vector drawing (an SVG document as text), saved as ``figures/<name>.svg``.
Arrays of any framework that convert with ``np.asarray`` (JAX, PyTorch CPU tensors) are accepted. Systems never
choose paths; the run loop writes artifacts (``core/artifact_io.py``). ``Heatmap`` is defined in ``viz`` (it is a
drawing spec: ``viz/table.py``) and re-exported here, where systems look for the artifact kinds.
"""

from __future__ import annotations

import dataclasses

from athanor.viz.table import Heatmap

__all__ = ["Heatmap", "Svg"]


@dataclasses.dataclass(frozen=True)
class Svg:
    """An SVG document (``text`` starts with ``<svg`` or an XML declaration)."""

    text: str

    def __post_init__(self):
        head = self.text.lstrip()[:5] if isinstance(self.text, str) else ""
        if head not in ("<svg ", "<svg>", "<?xml"):
            raise ValueError("Svg needs the text of an SVG document, starting with '<svg' or '<?xml'")
