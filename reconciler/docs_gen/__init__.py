"""Pages generated from what the code declares, so they cannot drift from it.

``python -m reconciler.docs_gen`` writes them; ``--check`` lists the stale ones and
exits 1 (a test runs it). Each page's module renders text from one source of truth: the
daemon's config model (:mod:`.config_doc`), the OpenAPI document the API serves
(:mod:`.api_doc`), the catalogue of condition reasons (:mod:`.troubleshooting`); the spec
reference comes from the JSON Schemas (:mod:`reconciler.specs.spec_doc`).
"""
