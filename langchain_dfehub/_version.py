"""The package version, in one place (the User-Agent header reports it)."""

__version__ = "0.1.0"
