"""The operator's read side and actions: the service overview, pending entries, parked work,
one invocation's detail and timeline, the actions that unstick work (``actions``), and the
backlog numbers the gateway limits and exports (``backlog``). The documents they answer with
are in ``documents``; the gateway's ``/admin`` API and the CLI both call these functions."""
