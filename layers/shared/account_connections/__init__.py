"""Account connections: the code every function of the service shares.

Models and statuses, the repository over the state table, authorization, RFC 7807 problems,
observability, and the adapters for Step Functions, SNS and IAM. Handlers in ``functions/``
only wire an event into one call of this package.
"""
