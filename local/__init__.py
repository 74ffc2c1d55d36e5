"""The local stack: the service on moto, no AWS, no Docker; imports only itself and third parties.

``template.yaml`` is translated from SAM to CloudFormation offline, deployed into moto (in server
mode, in this process), and completed with what moto's CloudFormation drops. The HTTP front turns
requests into API Gateway HTTP API events for the functions the template routes them to; each
function runs its real handler in its own worker processes. See docs/local-stack.md.

Imports: the standard library, moto, boto3, the SAM translator, PyJWT, and modules of ``local`` without
cycles (tests/checks/test_local_imports.py); never ``bench`` or ``tests``, nor the service's code,
which only the workers load, from the functions' folders. ``local.seed_data`` imports only the
standard library: tests read the seed from it.

Programmatic use (benchmarks, tests)::

    from local.stack import LocalStack

    with LocalStack(port=0) as stack:
        print(stack.url)
"""
