"""StateSet's PostgreSQL database backend: Django's, with a pool that recovers from a restart at
once."""
