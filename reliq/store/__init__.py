"""Everything reliq keeps in Redis: the key layout (``keys``), the invocation record and its
fields (``record``), partitions (``layout``), connecting to one server or a Cluster
(``topology``), what an ack is worth (``durability``), and the Lua scripts with their typed
outcomes (``scripts``, ``lua/``). Imports nothing from the rest of reliq but ``codec`` and
``errors``."""
