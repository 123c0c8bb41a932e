"""Development servers: the embedded ``valkey-server`` (``embedded``) and a local Valkey
Cluster (``cluster``), used by ``reliq dev``/``reliq redis``, the tests and the benchmarks."""
