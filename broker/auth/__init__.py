"""Partner authentication: the registry of clients, client assertions and access tokens."""
