"""``python -m acctconn``: the same as the ``acctconn`` console script."""

from acctconn.main import main

main()
