"""packager's version: one place, imported by whatever writes it (report, cache key, generated files)."""

__version__ = "0.1.0"
