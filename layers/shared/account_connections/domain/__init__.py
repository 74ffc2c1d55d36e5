"""Domain: the stored entities and their rules as pure Python (connections, links, the registry,
audit events, statuses, errors, trust-policy evaluation). Imports pydantic and the standard
library only: never boto3, botocore, powertools, an adapter or a use case."""
