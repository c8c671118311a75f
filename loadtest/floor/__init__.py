"""The framework floor of ``make bench`` (SPEC §9): a bare Django project — its own settings, no
apps, no middleware, no database, one view — served by the same gunicorn binary with the same
flags as the API. Every endpoint's throughput is reported as a ratio to it, so the project's own
middleware, auth, rate limiting, logging and metrics are part of what each endpoint costs."""
