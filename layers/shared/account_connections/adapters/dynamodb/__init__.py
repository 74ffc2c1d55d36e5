"""The state table: one small core (``table``), the item layout (``keys``), and one store per
aggregate: connections (with their roles, links and history), tokens, the registry, the audit log."""
