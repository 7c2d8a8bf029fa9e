"""Batch transforms: ``xcs.vmap`` (a batch on the shared scheduler) and ``xcs.pmap``
(the same on threads, processes, Ray or any Executor).

Layout: ``_axes`` (in_axes, splitting arguments into items, stacking results),
``_shard`` (running a slice of the items with the local scheduler; what remote
workers import), ``_vmap``, ``_pmap`` (backends and sharding).
"""
