"""One module per command or command group; ``acctconn.main`` registers each of them."""
