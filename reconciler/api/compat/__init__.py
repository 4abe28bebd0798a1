"""Compatibility surfaces: other tools' APIs mapped onto the same daemon view.

Each module serves one reference document of ../shared/reference/ with its paths, field
names (camelCase where that API uses it) and shapes, over
:class:`reconciler.api.view.DaemonView`.
"""
