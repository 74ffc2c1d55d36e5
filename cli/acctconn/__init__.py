"""acctconn: the command-line client of the account connections service."""

__version__ = "0.1.0"
