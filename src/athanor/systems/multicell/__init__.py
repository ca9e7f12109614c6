"""Multicell World: an open-ended chemistry of multicellular organisms (``world`` runs it, ``measures`` watches)."""
