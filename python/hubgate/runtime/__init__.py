"""Running the gateway: supervised tasks under one tree of Trio nurseries."""
