"""The approval workflow's Lambda steps: each module holds one step's logic (models in, models
out, ports passed in) and its ``handle(event)``, which the function's handler calls. A step
imports the domain, ports, logic and ``wiring`` (only ``handle`` asks it for adapters), never a route.

A step lets domain errors propagate: their class name becomes the Lambda ``errorType`` that the
state machine's ``Retry``/``Catch`` match (``DependencyUnavailable`` is retried, the rest caught).
"""
