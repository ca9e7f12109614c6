"""athanor: research writing made into systems you can run, read, extend and trust."""

__version__ = "0.1.0"
