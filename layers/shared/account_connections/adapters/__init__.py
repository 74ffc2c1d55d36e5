"""Adapters: the only modules that speak to AWS (boto3, botocore). Each implements a port of
``ports.py`` and turns its service's errors into domain errors. Imports the domain and ports."""
