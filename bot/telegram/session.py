"""aiogram's aiohttp session, doing less for each Bot API call (measured with `make bench`, README "Benchmarks").

A questionnaire tap is three calls (answer the button, edit the question, send the next one), so what aiogram does
per call is much of what a tap costs. Two things here, both invisible to Telegram and to the rest of the bot:

- A call without files goes as one JSON body, rather than a form whose nested fields (the keyboard) are each
  JSON-encoded on their own. Telegram takes either; a call with a file still goes as aiogram's multipart form.
- A successful answer is read straight from its JSON text with the method's response model, looked up once per
  kind of call: aiogram decodes the JSON first, then builds `Response[T]` anew for every call, a pydantic generic
  lookup that cost more than reading the answer itself.
  Anything else (an error, a body that does not parse) goes through aiogram's own check, so every error is raised
  exactly as aiogram raises it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import FormData
from aiohttp.payload import JsonPayload
from pydantic import ValidationError

if TYPE_CHECKING:
    from aiogram import Bot


class LeanSession(AiohttpSession):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._response_models: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}

    def build_form_data(self, bot: Bot, method: TelegramMethod[TelegramType]) -> FormData:
        files: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared:  # aiogram leaves out empty and false values: so does this
                values[key] = prepared
        if files:
            return super().build_form_data(bot, method)
        # aiohttp's post takes any payload as `data`; a JSON one is what Telegram reads as application/json.
        return cast(FormData, JsonPayload(values, dumps=self.json_dumps))

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        if HTTPStatus.OK <= status_code <= HTTPStatus.IM_USED:
            kind = type(method)
            model = self._response_models.get(kind)
            if model is None:
                model = self._response_models[kind] = Response[method.__returning__]  # type: ignore[name-defined]
            try:
                # Straight from the JSON text: pydantic parses and validates in one pass, no dict in between.
                response = model.model_validate_json(content, context={"bot": bot})
            except ValidationError:
                pass  # not what a success looks like: aiogram's check says what it is, its way
            else:
                if response.ok:
                    return cast(Response[TelegramType], response)
        return super().check_response(bot, method, status_code, content)
