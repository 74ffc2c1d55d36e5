"""The local stack: the whole service on one machine, no AWS account and no Docker.

``template.yaml`` is translated from SAM to CloudFormation offline, deployed into moto (in server
mode, in this process), and completed with what moto's CloudFormation drops. The HTTP front turns
requests into API Gateway HTTP API events for the functions the template routes them to; each
function runs its real handler in its own worker processes. See docs/local-stack.md.

Programmatic use (benchmarks, tests)::

    from local.stack import LocalStack

    with LocalStack(port=0) as stack:
        print(stack.url)
"""
