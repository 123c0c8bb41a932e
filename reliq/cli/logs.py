"""The CLI's logging setup: ``reliq.logformat`` (shared with the gateway's worker processes)."""

from reliq.logformat import JsonFormatter, setup

__all__ = ["JsonFormatter", "setup"]
