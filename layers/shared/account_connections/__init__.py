"""Account connections: the code every function of the service shares, by role.

``domain/`` (entities and rules, pure) <- ``ports.py`` (Protocols) <- ``logic/`` (use cases over
ports) and ``adapters/`` (AWS: DynamoDB, Step Functions, SNS, IAM); ``wiring.py`` builds the
adapters; ``api/`` (HTTP routes) and ``steps/`` (workflow steps) ask ``wiring`` and call
``logic``. Handlers in ``functions/`` only wire an event into one call of this package.
"""
