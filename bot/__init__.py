"""Puente's transport: Telegram (aiogram), storage, rendering and the terminal chat around the pure `flows` core."""
