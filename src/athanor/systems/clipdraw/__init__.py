"""CLIPDraw: drawing by optimising Bezier strokes against an image-text model (``render`` rasterises them)."""
