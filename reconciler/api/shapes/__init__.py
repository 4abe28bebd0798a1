"""The API's shapes as code: pydantic models of request and response bodies, and the
route registry each surface declares its routes in.

:mod:`~reconciler.api.shapes.registry` holds the declarations (method, path, summary, role,
request and answers by status); :mod:`reconciler.api.openapi` turns every surface's
declarations into the OpenAPI document, so the document says what the models say.
"""
