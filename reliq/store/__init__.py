"""Everything reliq keeps in Redis: the key layout (``keys``), the invocation record and its
fields (``record``), partitions (``layout``), connecting to one server or a Cluster
(``topology``) and the typed view of that client (``commands``), what an ack is worth
(``durability``), and the Lua scripts (``scripts``, ``lua/``) with their typed outcomes
(``replies``). Imports nothing from the rest of reliq but ``codec`` and ``errors``."""
