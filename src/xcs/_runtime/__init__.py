"""The runtime: one shared pool, ordered task groups, deadlines, per-site measurement."""
