"""The bundled examples: ``reliq dev`` with no argument runs ``reliq.examples.shop:app``, so a
fresh ``pip install 'reliq[gateway]'`` has something to call from any directory."""
