"""The ``reliq`` command line: each command calls a library function and prints its result."""

from reliq.cli.main import main

__all__ = ["main"]
