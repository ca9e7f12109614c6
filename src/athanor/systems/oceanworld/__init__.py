"""Oceanworld (post 13): grid-genome soft swimmers and the quality-diversity searches over them."""
