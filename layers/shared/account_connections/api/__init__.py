"""The HTTP API: the resolver and its problems (``app``, ``problems``), the idempotent create,
the administrator's pages, and one powertools Router per audience. Routes ask ``wiring`` for
adapters and call ``logic``; ``docs.routers()`` lists every router for the OpenAPI document."""
