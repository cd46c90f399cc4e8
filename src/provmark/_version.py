"""The version of provmark (its own module, so any part can name it without importing
the package's public API and everything behind it)."""

__version__ = "0.1.0"
