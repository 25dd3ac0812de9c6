# The workshop: `make` lists every target. `make demo` and `make test` are all a fresh clone needs.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# uv installs the locked environment; bootstrapped with pip when the machine has no uv.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV_STAMP := .venv/.synced
RUN := $(UV) run --locked --no-sync
# Measured here: uv does not compile bytecode by default and PYTHONDONTWRITEBYTECODE=1 is set,
# so every import of this stack would recompile.
SYNC := $(UV) sync --locked --compile-bytecode

DEMO_LEVELS := level0 level1 level2 level3 level4
REPLAY_ARGS ?=
DRIFT_ARGS ?=
WORKSHOP_DIR ?= local/workshop
VERSION ?=
WINDOW ?=
MLFLOW_DIR ?= local/mlflow
EVIDENTLY_DIR ?= local/evidently
EVIDENTLY_PORT ?= 8001
EVIDENTLY_HOST ?= 127.0.0.1
IMAGE ?= ghcr.io/example/flight-delay
LEVEL0_ARGS ?=
TEAM_DIR ?= local/team
# What people pass (make promote VERSION=3) reaches the commands through the environment, as
# text: $(value ...) is never expanded by make, and a recipe quotes it ("$$ARG_VERSION") or
# splits it into words without running it (read -a), so no value runs a command.
export ARG_VERSION := $(value VERSION)
export ARG_WINDOW := $(value WINDOW)
export ARG_REPLAY_ARGS := $(value REPLAY_ARGS)
export ARG_DRIFT_ARGS := $(value DRIFT_ARGS)
export ARG_LEVEL0_ARGS := $(value LEVEL0_ARGS)
export ARG_WORKSHOP_DIR := $(value WORKSHOP_DIR)
export ARG_MLFLOW_DIR := $(value MLFLOW_DIR)
export ARG_EVIDENTLY_DIR := $(value EVIDENTLY_DIR)
export ARG_EVIDENTLY_PORT := $(value EVIDENTLY_PORT)
export ARG_EVIDENTLY_HOST := $(value EVIDENTLY_HOST)
export ARG_IMAGE := $(value IMAGE)
export ARG_TEAM_DIR := $(value TEAM_DIR)
# Make itself exports what was set on its command line, expanding it on the way (so
# VERSION='$(shell ...)' would run): the raw variables stay out of the environment.
unexport VERSION WINDOW REPLAY_ARGS DRIFT_ARGS LEVEL0_ARGS WORKSHOP_DIR MLFLOW_DIR \
  EVIDENTLY_DIR EVIDENTLY_PORT EVIDENTLY_HOST IMAGE TEAM_DIR

## help: list every target with what it does
.PHONY: help
help:
	@awk 'BEGIN {print "Targets (make demo runs everything, make test runs the tests):"} \
	  /^## / {line = substr($$0, 4); i = index(line, ": "); \
	          printf "  %-12s %s\n", substr(line, 1, i - 1), substr(line, i + 2)}' \
	  $(MAKEFILE_LIST)

$(VENV_STAMP): pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
	  python3 -m pip install --quiet "uv>=0.9"
	$(SYNC)
	@touch $@

## setup: install the locked environment (only when missing or stale) and the local folders
.PHONY: setup
setup: $(VENV_STAMP)
	@$(RUN) python -c "from level1_devops.settings import get_settings; get_settings().ensure_dirs()"
	@echo "Environment ready: .venv (locked by uv.lock). Try: make demo"

## level0: Level 0, before MLOps: execute the exploratory notebook headless (hand-off model file)
.PHONY: level0
level0: setup
	read -r -a args <<< "$$ARG_LEVEL0_ARGS"; $(RUN) python level0_notebooks/run.py "$${args[@]}"

## level1: Level 1, DevOps: ingest the feed (validate, quarantine, DVC), batch-score a month
.PHONY: level1
level1: setup
	$(RUN) mlops ingest
	@if [ -f local/models/level0/flight_delay.skops ]; then \
	  $(RUN) mlops score --input data/raw/2013-12.parquet \
	    --output local/reports/level1/scores-2013-12.parquet; \
	else echo "No Level 0 hand-off model yet: run 'make level0' to score with it."; fi
	$(RUN) dvc status --cloud

## quarantine: Level 1 exercise: ingest a broken copy of January into a scratch project (WORKSHOP_DIR)
.PHONY: quarantine
quarantine: setup
	rm -rf -- "$$ARG_WORKSHOP_DIR/project"
	$(RUN) python -m level1_devops.broken_feed "$$ARG_WORKSHOP_DIR/feed"
	MLOPS_PROJECT_DIR="$$ARG_WORKSHOP_DIR/project" $(RUN) mlops ingest --source "$$ARG_WORKSHOP_DIR/feed"
	MLOPS_PROJECT_DIR="$$ARG_WORKSHOP_DIR/project" $(RUN) mlops status --section data
	@echo "Every row is in raw or quarantine: look at $$ARG_WORKSHOP_DIR/project/data/quarantine (column 'reason')"

## level2: Level 2, automated training: ingest, Prefect train flow (MLflow + registry), Dask tune
.PHONY: level2
level2: setup
	$(RUN) mlops ingest
	$(RUN) mlops train
	$(RUN) mlops tune --no-register
	@$(RUN) mlops status --section registry

## level3: Level 3, automated deployment: certify and promote @challenger, serve it, real requests
.PHONY: level3
level3: setup
	$(RUN) mlops promote --reason "make level3"
	$(RUN) python -m level3_deployment.demo

## level4: Level 4, full MLOps: replay 2013 through the live service; drift -> retrain -> certify -> hot-swap
.PHONY: level4
level4: setup
	$(RUN) mlops ingest
	read -r -a args <<< "$$ARG_REPLAY_ARGS"; $(RUN) mlops replay "$${args[@]}"

## drift: inject drift into the live service (a storm at every origin) and watch the loop react (local/drift)
.PHONY: drift
drift: setup
	$(RUN) mlops ingest
	read -r -a args <<< "$$ARG_DRIFT_ARGS"; \
	  $(RUN) mlops replay --inject-drift --state-dir local/drift --first 2013-06 --last 2013-08 "$${args[@]}"

## monitor: monitor a window of the prediction log (WINDOW=YYYY-MM or YYYY-Www, default the newest); retrains if the policy says so
.PHONY: monitor
monitor: setup
	$(RUN) mlops ingest
	$(RUN) mlops monitor $${ARG_WINDOW:+--window "$$ARG_WINDOW"}

## train: train once with params.yaml (Level 2 exercise: change train.model, train, compare in MLflow)
.PHONY: train
train: setup
	$(RUN) mlops train

## promote: certify a version (VERSION=n, default @challenger) and make it @champion
.PHONY: promote
promote: setup
	$(RUN) mlops promote $${ARG_VERSION:+--version "$$ARG_VERSION"} --reason "make promote"

## rollback: move @champion back to the previous champion
.PHONY: rollback
rollback: setup
	$(RUN) mlops rollback --reason "make rollback"

## serve: the scoring service (Level 4's app: every prediction logged) on http://127.0.0.1:8000 (docs at /docs); Ctrl-C stops it
.PHONY: serve
serve: setup
	$(RUN) mlops serve --app level4

## image-publish: build the service image and push it (needs a Docker engine and REGISTRY_TOKEN)
.PHONY: image-publish
image-publish:
	docker build -f level3_deployment/Dockerfile -t "$$ARG_IMAGE:$$(git rev-parse --short HEAD)" .
	echo "$$REGISTRY_TOKEN" | docker login ghcr.io -u "$${GITHUB_ACTOR:-ci}" --password-stdin
	docker push "$$ARG_IMAGE:$$(git rev-parse --short HEAD)"

## demo: run every level end to end, in order, and print the time each took
.PHONY: demo
demo: setup
	@set -e; summary=""; \
	for level in $(DEMO_LEVELS); do \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$level; \
	  summary="$$summary\n  $$level: $$(( $$(date +%s) - start )) s"; \
	done; \
	printf "\nDemo finished. Time per level:$$summary\n"; \
	printf "Where to look:\n"; \
	printf "  data/raw, data/quarantine        ingested flights, DVC-versioned (dvc status --cloud)\n"; \
	printf "  local/reports                    the notebook, batch scores, training plots, certification\n"; \
	printf "  make mlflow-ui                   experiments and the registry of Levels 2-3\n"; \
	printf "  make mlflow-ui MLFLOW_DIR=local/replay/mlflow   the replay's runs, versions and monitoring\n"; \
	printf "  make evidently-ui                every monitored window (project 'flight-delay replay')\n"; \
	printf "  local/replay/reports/level4/replay/timeline.md, auc_over_time.png   the replay\n"; \
	printf "  make status                      everything at once\n"

## test: run the whole test suite (installs first if needed)
.PHONY: test
test: setup
	$(RUN) pytest

## lint: ruff, mypy, and the deployment files (hadolint, kubernetes-validate), as CI runs them
.PHONY: lint
lint: setup
	$(RUN) ruff check .
	$(RUN) mypy
	$(RUN) hadolint level3_deployment/Dockerfile
	$(RUN) kubernetes-validate --strict --quiet level3_deployment/k8s/*.yaml team/k8s/*.yaml

## status: what is ingested, versioned, registered and where everything lives
.PHONY: status
status: setup
	@$(RUN) mlops status

## mlflow-ui: browse experiments and the registry at http://127.0.0.1:5000 (MLFLOW_DIR=local/replay/mlflow: the replay's)
.PHONY: mlflow-ui
mlflow-ui: setup
	$(RUN) mlflow server --host 127.0.0.1 --port 5000 \
	  --backend-store-uri "sqlite:///$$ARG_MLFLOW_DIR/mlflow.db" --default-artifact-root "$$ARG_MLFLOW_DIR/artifacts"

## evidently-ui: the monitoring reports of every window at http://127.0.0.1:8001
.PHONY: evidently-ui
evidently-ui: setup
	@# Its --secret (EVIDENTLY_SECRET) guards only writes: whoever reaches it reads every report.
	@case "$$ARG_EVIDENTLY_HOST" in 127.0.0.1|localhost|::1) ;; *) \
	  echo "EVIDENTLY_HOST=$$ARG_EVIDENTLY_HOST refused: the Evidently UI answers on loopback only" \
	    "(its secret guards only writes; anyone who reaches it reads every report). Reach it" \
	    "through an SSH tunnel or an authenticating proxy: docs/team-profile.md, Exposure." >&2; \
	  exit 2;; esac
	$(RUN) evidently ui --host "$$ARG_EVIDENTLY_HOST" --port "$$ARG_EVIDENTLY_PORT" --workspace "$$ARG_EVIDENTLY_DIR"

## prefect-ui: a local Prefect server and UI at http://127.0.0.1:4200 (export PREFECT_API_URL to use it)
.PHONY: prefect-ui
prefect-ui: setup
	@echo "In another shell: export PREFECT_API_URL=http://127.0.0.1:4200/api, then mlops train"
	PREFECT_HOME=local/prefect PREFECT_SERVER_ANALYTICS_ENABLED=false \
	  $(RUN) prefect server start --host 127.0.0.1 --port 4200

## team-up: the team profile as real processes on 127.0.0.1 (PostgreSQL, MLflow, Prefect, Dask, 2 services, Prometheus; TEAM_DIR=local/team)
.PHONY: team-up
team-up: setup
	$(RUN) python -m team.stack up --state-dir "$$ARG_TEAM_DIR"

## team-demo: the whole loop through the team stack (starts it when it is not running; make team-down stops it)
.PHONY: team-demo
team-demo: setup
	$(RUN) python -m team.stack status --state-dir "$$ARG_TEAM_DIR" >/dev/null 2>&1 || \
	  $(RUN) python -m team.stack up --state-dir "$$ARG_TEAM_DIR"
	$(RUN) python -m team.demo --state-dir "$$ARG_TEAM_DIR"

## data-pull: what a fresh runner does first: point DVC at the shared remote (MLOPS_DVC_REMOTE_DIR) and pull data/raw
.PHONY: data-pull
data-pull: setup
	@: "$${MLOPS_DVC_REMOTE_DIR:?set MLOPS_DVC_REMOTE_DIR to the shared DVC remote (see docs/team-profile.md)}"
	$(RUN) dvc remote modify --local local url "$$(realpath -m -- "$$MLOPS_DVC_REMOTE_DIR")"
	$(RUN) dvc pull data/raw

## team-down: stop every process team-up started and its PostgreSQL (state kept; python -m team.stack down --purge deletes it)
.PHONY: team-down
team-down: setup
	$(RUN) python -m team.stack down --state-dir "$$ARG_TEAM_DIR"

## clean: delete generated state (local/, ingested data, DVC cache); keeps .venv
.PHONY: clean
clean:
	rm -rf local data/raw data/quarantine .dvc/cache .dvc/tmp .pytest_cache
