"""Where a sentinel alarm goes once its batch has committed: the device's
broker account is disabled (invariant 6), then the alarm is logged,
published on the alarm topic and posted to the operator's webhook."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from gateway.logs import log, log_event
from gateway.sentinel import Alarm
from protocol import topics


def raise_alarm(alarm: Alarm, broker_admin: Callable[[], Any], client: Any, webhook_url: str) -> None:
    """`broker_admin()` is the gateway's broker admin (None: it has none);
    `client` its paho client, None while it has none."""
    if alarm.device_id and not alarm.broker:
        _broker_suspend(alarm, broker_admin(), client)
    body = json.dumps(alarm.as_dict(), ensure_ascii=True, sort_keys=True).encode()
    log.warning("ALARM %s", body.decode())
    if client is not None:
        client.publish(topics.ALARM, body, qos=1)
    if webhook_url.startswith(("http://", "https://")):
        threading.Thread(target=_post, args=(webhook_url, body), daemon=True).start()


def _broker_suspend(alarm: Alarm, admin: Any, client: Any) -> None:
    """Invariant 6: a device the sentinel suspended loses its broker account too."""
    if admin is None:
        alarm.broker = "not disabled: the gateway has no broker admin credentials; refused at the gateway"
        return
    if client is not None and client.want_write():
        client.loop_write()  # the denial first, while the device can still get it
    try:
        admin.disable(alarm.device_id)
        alarm.broker = "disabled"
    except Exception as e:
        alarm.broker = "not disabled (%s); refused at the gateway" % e


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - operator-configured URL
    except Exception as e:
        log_event("webhook-failed", error=type(e).__name__)
