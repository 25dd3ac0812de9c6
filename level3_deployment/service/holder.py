"""The model being served, and how it is swapped without a restart.

The current model is one reference, replaced in a single assignment once the new version has
loaded and passed its smoke prediction: a request (or micro-batch) that took the old
reference finishes on the old model, the next one gets the new one. A version that fails to
load is refused and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from level2_training.registry import CHAMPION
from level3_deployment.loading import LoadedModel, ModelLoadError, load_version, version_for_alias

log = logging.getLogger("mlops.service")


@dataclass
class ReloadOutcome:
    swapped: bool
    version: str | None
    message: str


class ModelHolder:
    """Holds @champion; ``reload`` swaps it atomically, ``poll`` follows the alias."""

    def __init__(self, client: Any, model_name: str) -> None:
        self.client = client
        self.model_name = model_name
        self.current: LoadedModel | None = None
        self.shutting_down = False
        self.last_refused: str | None = None
        self._lock = asyncio.Lock()
        self.listeners: list[Any] = []  # called with (old, new) after each swap

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.shutting_down

    async def reload(self, version: str | None = None) -> ReloadOutcome:
        """Load ``version`` (default: where @champion points) and swap it in if it is good."""
        async with self._lock:
            target = version or await asyncio.to_thread(
                version_for_alias, self.client, self.model_name, CHAMPION)
            if target is None:
                return ReloadOutcome(False, None, f"{self.model_name} has no @{CHAMPION}")
            if self.current is not None and self.current.version == target:
                return ReloadOutcome(False, target, f"v{target} is already serving")
            try:
                loaded = await asyncio.to_thread(load_version, self.client, self.model_name,
                                                 target)
            except ModelLoadError as err:
                self.last_refused = target
                log.error("refused v%s, still serving %s: %s", target,
                          self.current.version if self.current else "nothing", err)
                return ReloadOutcome(False, target, f"refused: {err}")
            old, self.current = self.current, loaded  # the swap: one assignment
            for listener in self.listeners:
                listener(old, loaded)
            log.info("now serving %s v%s (was %s)", self.model_name, loaded.version,
                     old.version if old else "nothing")
            return ReloadOutcome(True, target, f"serving v{target}")

    async def poll(self, interval_s: float) -> None:
        """Follow @champion: reload whenever it points at another version (until cancelled)."""
        while True:
            try:
                target = await asyncio.to_thread(version_for_alias, self.client,
                                                 self.model_name, CHAMPION)
                serving = self.current.version if self.current else None
                if target is not None and target not in (serving, self.last_refused):
                    await self.reload(target)
            except Exception:  # the registry may be briefly unreachable; keep serving
                log.exception("polling @%s failed; still serving", CHAMPION)
            await asyncio.sleep(interval_s)
