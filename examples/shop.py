"""The bundled examples (``reliq/examples/shop.py``) under their checkout name, ``examples.shop``:
``reliq worker examples.shop:app`` in the repository and in the image runs the same services as
``reliq dev`` with no argument."""

from reliq.examples.shop import app, log, notifications, orders, shipping

__all__ = ["app", "log", "notifications", "orders", "shipping"]
