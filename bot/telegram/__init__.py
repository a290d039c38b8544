"""The Telegram transport on aiogram 3: callback data, handlers, middlewares and the sender."""
