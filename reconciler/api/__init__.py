"""The daemon's HTTP API (docs/architecture.md, HTTP API): status, triggers, webhooks and metrics.

Served by aiohttp on the daemon's own event loop; every route reads and acts through
:class:`reconciler.api.view.DaemonView`, never through the daemon's internals.
"""
