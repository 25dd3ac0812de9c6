#!/bin/sh
# One PostgreSQL role and database per service, read from the connection URLs the services
# themselves use (so each password is set in one place): MLflow's store, MLflow's auth store
# (database_uri in its auth config), Prefect's store and the project's shared state.
# Run by the compose file's init job and the Kubernetes Job (the same text, checked by
# tests/test_team_files.py); safe to run again (it also resets each role's password).
# Needs psql and PGHOST/PGUSER/PGPASSWORD of the superuser. Passwords must be URL-safe.
set -eu
export PGDATABASE="${PGDATABASE:-postgres}"  # the maintenance database, not one named after PGUSER

auth_uri=$(sed -n 's/^database_uri *= *//p' "$MLFLOW_AUTH_CONFIG_PATH")
for url in "$MLFLOW_BACKEND_STORE_URI" "$auth_uri" "$PREFECT_API_DATABASE_CONNECTION_URL" \
           "$MLOPS_STATE_DB_URL"; do
  rest=${url#*://}            # user:password@host:port/db?options
  role=${rest%%:*}
  password=${rest#*:}
  password=${password%%@*}
  db=${rest##*/}
  db=${db%%\?*}
  psql -v ON_ERROR_STOP=1 -v role="$role" -v password="$password" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
  echo "database $db (owner $role) ready"
done
