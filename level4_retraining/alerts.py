"""Alerts: what the loop could not do by itself (a retrain refused or unable to run), kept and
sent to the people who must act.

Each alert is stored first (``shared_state.store_alert``: a JSON line, or a database row), so
nothing about delivery can lose it; then, when ``settings.alert_webhook_url`` is set, it is
POSTed there as JSON (a chat or paging webhook: ``text`` carries the message), with a short
timeout and a couple of retries. A delivery that still fails is logged, counted
(``DELIVERY``) and, in the database, marked ``delivered = false`` on the alert's row.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from level1_devops.settings import Settings
from level4_retraining.shared_state import mark_delivered, scope, store_alert

log = logging.getLogger("mlops.alerts")
TIMEOUT_S = 3.0
ATTEMPTS = 3        # one try and two retries
BACKOFF_S = 0.5     # before the first retry; doubled before the next


@dataclass
class DeliveryCounts:
    """Webhook deliveries of this process (the stored alerts say it across processes)."""

    delivered: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.delivered += 1
            else:
                self.failed += 1


DELIVERY = DeliveryCounts()


def alert(settings: Settings, message: str) -> dict[str, Any]:
    """Store an alert, then deliver it to the webhook when one is set; returns what was
    stored. A delivery failure is logged and counted, never raised."""
    line = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "message": message}
    alert_id = store_alert(settings, line)
    if settings.alert_webhook_url:
        ok = deliver(settings.alert_webhook_url, {**line, "project": scope(settings),
                                                  "text": f"mlops: {message}"})
        DELIVERY.count(ok)
        if alert_id is not None:
            mark_delivered(settings, alert_id, ok)
    return line


def deliver(url: str, payload: dict[str, Any], attempts: int = ATTEMPTS,
            timeout_s: float = TIMEOUT_S) -> bool:
    """POST ``payload`` as JSON to ``url``; True once it answers 2xx. A connection error, a
    timeout, a 429 or a 5xx is retried (``attempts`` in all); another 4xx is not."""
    why = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            reply = httpx.post(url, json=payload, timeout=timeout_s)
        except httpx.HTTPError as err:
            why = f"{type(err).__name__}: {err}"
            continue
        if reply.is_success:
            return True
        why = f"HTTP {reply.status_code}"
        if reply.status_code != 429 and reply.status_code < 500:
            break
    # The URL may carry a token (chat webhooks do): name only its host.
    log.error("alert not delivered to the webhook at %s (%s); it is kept in the alerts",
              httpx.URL(url).host, why)
    return False
