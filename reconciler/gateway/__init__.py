"""The cloud gateway server, a program of its own: ``python -m reconciler.gateway``.

It imports nothing else of the project; see :mod:`reconciler.gateway.server`.
"""
