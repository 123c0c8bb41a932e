"""The operator's read side and actions: the service overview, pending entries, parked work,
one invocation's detail and timeline, and the actions that unstick work (``actions``). The
documents they answer with are in ``documents``; the gateway's ``/admin`` API and the CLI both
call these functions."""
