"""The model being served, and how it is swapped without a restart.

The current model is one reference, replaced in a single assignment once the new version has
loaded, passed its smoke prediction and shown it may serve (its file is the registered one,
certified, and `mlops promote` recorded the release): a request (or micro-batch) that took
the old reference finishes on the old model, the next one gets the new one. A version that is
refused leaves the old one serving. A deliberate refusal (digest, certification, release
record, schema, trusted types) is remembered until the version's registry record changes; a
transient one (the registry or the artifact store did not answer) is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from level2_training.registry import CHAMPION
from level3_deployment.loading import (
    CERTIFIED_DIGEST_TAG,
    RELEASE_TAG,
    LoadedModel,
    ModelLoadError,
    load_version,
    release_problem,
)

log = logging.getLogger("mlops.service")
MAX_BACKOFF_S = 60.0
# What the registry answers for a missing model or alias (any other error may pass).
NO_SUCH_ALIAS = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


@dataclass
class ReloadOutcome:
    swapped: bool
    version: str | None
    message: str
    refusal: str | None = None  # why it was refused: "transient", or the deliberate kind


@dataclass
class _Target:
    """Where @champion points, with what decides whether a refusal still holds."""

    version: str
    key: tuple[str | None, ...]  # the version's release-relevant registry state


@dataclass
class ModelHolder:
    """Holds @champion; ``reload`` swaps it atomically, ``poll`` follows the alias."""

    client: Any
    model_name: str
    current: LoadedModel | None = None
    shutting_down: bool = False
    listeners: list[Callable[[LoadedModel | None, LoadedModel], None]] = field(
        default_factory=list)  # called with (old, new) after each swap
    on_refusal: list[Callable[[str], None]] = field(default_factory=list)  # with the kind
    refused: tuple[str | None, ...] | None = None  # the key of the last deliberate refusal
    retry_at: float = 0.0       # after a transient failure: not before this loop time
    backoff_s: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.shutting_down

    def _target(self) -> _Target | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(self.model_name, CHAMPION)
        except MlflowException as err:
            if err.error_code in NO_SUCH_ALIAS:  # no model, or no @champion yet
                return None
            raise  # the registry did not answer: the caller retries
        record = self.client.get_registered_model(self.model_name).tags.get(RELEASE_TAG)
        tags = mv.tags or {}
        key = (str(mv.version), tags.get("certification"), tags.get(CERTIFIED_DIGEST_TAG),
               record)
        return _Target(str(mv.version), key)

    def _load(self, version: str) -> LoadedModel:
        loaded = load_version(self.client, self.model_name, version)
        problem = release_problem(self.client, loaded)
        if problem is not None:
            raise ModelLoadError(problem)
        return loaded

    async def reload(self) -> ReloadOutcome:
        """Load the version @champion points at and swap it in if it may serve."""
        async with self._lock:
            try:
                target = await asyncio.to_thread(self._target)
            except Exception as err:  # the registry does not answer: nothing to decide yet
                return self._transient(None, f"registry unreachable: {type(err).__name__}: {err}")
            if target is None:
                return ReloadOutcome(False, None, f"{self.model_name} has no @{CHAMPION}")
            if self.current is not None and self.current.version == target.version:
                return ReloadOutcome(False, target.version, f"v{target.version} is already serving")
            try:
                loaded = await asyncio.to_thread(self._load, target.version)
            except ModelLoadError as err:
                if err.transient:
                    return self._transient(target.version, str(err))
                self.refused = target.key
                self.backoff_s = 0.0
                log.error("refused v%s, still serving %s: %s", target.version,
                          self.current.version if self.current else "nothing", err)
                for notify in self.on_refusal:
                    notify("deliberate")
                return ReloadOutcome(False, target.version, f"refused: {err}", "deliberate")
            self.backoff_s, self.retry_at = 0.0, 0.0
            old, self.current = self.current, loaded  # the swap: one assignment
            for listener in self.listeners:
                listener(old, loaded)
            log.info("now serving %s v%s (was %s)", self.model_name, loaded.version,
                     old.version if old else "nothing")
            return ReloadOutcome(True, target.version, f"serving v{target.version}")

    def _transient(self, version: str | None, message: str) -> ReloadOutcome:
        self.backoff_s = min(MAX_BACKOFF_S, max(1.0, self.backoff_s * 2))
        self.retry_at = asyncio.get_running_loop().time() + self.backoff_s
        log.warning("could not load v%s (will retry in %.0f s), still serving %s: %s",
                    version or "?", self.backoff_s,
                    self.current.version if self.current else "nothing", message)
        for notify in self.on_refusal:
            notify("transient")
        return ReloadOutcome(False, version, f"not loaded yet: {message}", "transient")

    async def poll(self, interval_s: float) -> None:
        """Follow @champion: reload whenever it points at another version, or when what
        decided a refusal changed (until cancelled)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                target = await asyncio.to_thread(self._target)
                serving = self.current.version if self.current else None
                if (target is not None and target.version != serving
                        and target.key != self.refused and loop.time() >= self.retry_at):
                    await self.reload()
            except Exception:  # the registry may be briefly unreachable; keep serving
                log.exception("polling @%s failed; still serving", CHAMPION)
            await asyncio.sleep(interval_s)
