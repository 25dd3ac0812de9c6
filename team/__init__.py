"""The team profile: the same loop on shared services (PostgreSQL, an MLflow server with auth,
a Prefect server with a work pool and a worker, a Dask cluster, Prometheus), started as real
processes on one machine by ``python -m team.stack up`` (``make team-up``); see
docs/team-profile.md. Nothing in the level packages imports this package."""
