"""Where sessions and answers live: one interface, an SQL backend (SQLite by default) and an in-memory one."""

from bot.storage.base import Erasure, Loaded, Participant, Store
from bot.storage.memory import MemoryStore
from bot.storage.sql import SqlStore, open_store

__all__ = ["Erasure", "Loaded", "MemoryStore", "Participant", "SqlStore", "Store", "open_store"]
