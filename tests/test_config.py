"""Settings: the documented example configuration is a working one."""

from pathlib import Path

from bot.__main__ import loop_factory
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_loads_with_its_defaults() -> None:
    """Copying .env.example to .env (then adding a token) gives a valid configuration: empty means "not set"."""
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.staff_chat_id is None
    assert settings.admin_ids == frozenset()
    assert settings.send_rate == 30
    assert settings.broadcast_in_flight() == 16


def test_paid_broadcasts_get_more_sends_in_flight() -> None:
    settings = Settings(_env_file=None, paid_broadcast=True)  # type: ignore[call-arg]
    assert settings.broadcast_in_flight() == 150
    assert Settings(_env_file=None, broadcast_concurrency=40).broadcast_in_flight() == 40  # type: ignore[call-arg]


def test_the_bot_runs_on_uvloop_unless_told_otherwise() -> None:
    """uvloop is locked for every platform that builds it; EVENT_LOOP=asyncio is the way back to Python's own."""
    import uvloop

    assert loop_factory(Settings(_env_file=None)) is uvloop.new_event_loop  # type: ignore[call-arg]
    assert loop_factory(Settings(_env_file=None, event_loop="asyncio")) is None  # type: ignore[call-arg]
