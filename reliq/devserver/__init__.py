"""Development servers: the embedded ``valkey-server`` (``embedded``), a local Valkey Cluster
(``cluster``) and ``reliq dev``'s whole local deployment (``dev``: Valkey + workers + gateway),
used by ``reliq dev``/``reliq redis``, the tests and the benchmarks."""
