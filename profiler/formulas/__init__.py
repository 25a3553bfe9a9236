"""Pure functions of an `ArchSpec` and a workload: parameters, FLOPs (2 per multiply-add) and bytes.

Nothing here allocates a tensor; each function's docstring gives its formula and source.
"""
