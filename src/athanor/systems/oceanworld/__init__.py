"""Oceanworld ("Quality Diversity: Evolving Ocean Creatures"): quality-diversity searches over grid-genome soft
swimmers (the world itself: ``athanor.envs.oceanworld``)."""
