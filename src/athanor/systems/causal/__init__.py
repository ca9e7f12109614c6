"""Causal-response optimisation: reading a language model by what makes it answer "Yes"."""
