"""Use cases, one module per area (requests, links, decisions, roles, the registry, audit). Each
takes and returns domain models and receives its ports as arguments. Imports the domain, the ports
and observability: never an adapter, boto3 or a route."""
