"""An app that imports fine in the supervisor but fails in every supervised worker process (the
supervisor sets ``RELIQ_WORKER_SLOT`` in its children): a crash loop at start."""

from __future__ import annotations

import os

from reliq import App, Service

if os.environ.get("RELIQ_WORKER_SLOT"):
    raise RuntimeError("this app cannot start in a worker process")

app = App([Service("never-started")])
