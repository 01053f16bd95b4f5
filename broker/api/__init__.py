"""The HTTP surface: thin routes over the services, one error map, middleware."""
