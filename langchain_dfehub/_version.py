"""The package version, in one place.

pyproject.toml reads it from here (`[tool.setuptools.dynamic]`), the
User-Agent header reports it, and `langchain_dfehub.__version__` exports it.
"""

__version__ = "0.1.0"
