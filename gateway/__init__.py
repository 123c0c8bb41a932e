"""reliq gateway: reliable RPC over HTTP with callee-placed triggers. App factory: ``create_app``."""
