"""Webhook delivery, as Telegram does it once a bot calls setWebhook.

Telegram POSTs each update as JSON to the bot's URL, with the ``X-Telegram-Bot-Api-Secret-Token`` header when a
secret was set, keeps at most ``max_connections`` requests in flight (1-100, 40 by default), and repeats a request
that did not get a 2xx answer. An update counts as delivered only on a 2xx: until then it stays pending, so a bot
that dies mid-request gets it again. The answer may itself be a Bot API call (a JSON body with ``method``), which
Telegram performs without telling the bot how it went. While a webhook is set, getUpdates is refused (409).

One leniency, because tests have no certificates: the fake delivers only to loopback addresses, over plain HTTP on
any port. Telegram wants HTTPS on port 443, 80, 88 or 8443, and the fake refuses a URL it could not reach.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from tests.fakebotapi.schema import BotAPIError

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_MAX_CONNECTIONS: Final = 40
_SECRET_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOOPBACK_NAMES: Final = frozenset({"localhost"})
#: Seconds before a refused update is posted again: Telegram backs off too, and keeps trying.
RETRY_DELAYS: Final = (0.05, 0.1, 0.2, 0.5, 1.0)
#: How long the fake waits for the bot's answer to one POST before counting it as failed.
POST_TIMEOUT: Final = 10.0
GETUPDATES_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """What setWebhook asked for, validated."""

    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None
    has_custom_certificate: bool

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> WebhookConfig:
        url = str(params["url"])
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BotAPIError.bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not _is_loopback(parts.hostname):
            raise BotAPIError.bad_request("bad webhook: the fake Bot API delivers webhooks to loopback addresses only")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise BotAPIError.bad_request("secret token contains unallowed characters")
        connections = int(params.get("max_connections", DEFAULT_MAX_CONNECTIONS))
        if not 1 <= connections <= 100:
            raise BotAPIError.bad_request("max_connections must be between 1 and 100")
        return cls(
            url=url,
            secret_token=None if secret is None else str(secret),
            max_connections=connections,
            ip_address=params.get("ip_address"),
            has_custom_certificate=params.get("certificate") is not None,
        )


@dataclass(slots=True)
class WebhookStats:
    """What delivery did, for tests to assert on."""

    posts: int = 0
    """POST requests made, retries included."""
    refused: int = 0
    """POSTs answered with something other than 2xx, or not answered at all."""
    peak_in_flight: int = 0
    """The most POSTs under way at once."""
    methods_answered: int = 0
    """Bot API calls the bot made in the body of its answer to a POST."""


@dataclass(slots=True)
class Webhook:
    """A set webhook and its delivery state; replaced as a whole by the next setWebhook."""

    config: WebhookConfig
    stats: WebhookStats = field(default_factory=WebhookStats)
    in_flight: set[int] = field(default_factory=set)
    """Update ids with a POST under way: never posted twice at once."""
    attempts: dict[int, int] = field(default_factory=dict)
    """Refused POSTs so far, per update id still pending."""
    not_before: dict[int, float] = field(default_factory=dict)
    """When a refused update may be posted again (``time.monotonic``)."""
    last_error_date: int | None = None
    last_error_message: str | None = None

    def ready(self, update_id: int, now: float) -> bool:
        return update_id not in self.in_flight and self.not_before.get(update_id, 0.0) <= now

    def refused(self, update_id: int, message: str) -> float:
        """Note a failed POST of `update_id`; returns the seconds to wait before the next one."""
        self.stats.refused += 1
        self.last_error_date = int(time.time())
        self.last_error_message = message
        attempt = self.attempts.get(update_id, 0)
        self.attempts[update_id] = attempt + 1
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
        self.not_before[update_id] = time.monotonic() + delay
        return delay

    def accepted(self, update_id: int) -> None:
        self.attempts.pop(update_id, None)
        self.not_before.pop(update_id, None)

    def info(self, pending: int, allowed_updates: list[str] | None) -> dict[str, Any]:
        """The ``WebhookInfo`` object."""
        info: dict[str, Any] = {
            "url": self.config.url,
            "has_custom_certificate": self.config.has_custom_certificate,
            "pending_update_count": pending,
            "max_connections": self.config.max_connections,
        }
        if self.config.ip_address:
            info["ip_address"] = self.config.ip_address
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        if allowed_updates is not None:
            info["allowed_updates"] = allowed_updates
        return info


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
