"""`python -m bot chat`: the same questionnaire in a terminal, no Telegram needed.

Buttons print as numbered options; type a number, a command (/back, /restart, /language ...) or an answer in
words. Lines can come from a pipe, so a whole conversation replays from a file:

    printf '1\\n1\\n1\\n' | python -m bot chat --lang es
"""

from __future__ import annotations

import sys
from typing import TextIO

from bot.conversation import Conversation, Person
from bot.intents import ChooseLanguage, Intent, Start, Typed, command_intent
from bot.outgoing import Button, Reply

_PERSON = Person(user_id=1, chat_id=1)


class TerminalChat:
    def __init__(self, conversation: Conversation, out: TextIO) -> None:
        self.conversation = conversation
        self.out = out
        self.buttons: list[Button] = []

    async def run(self, lines: TextIO, language: str | None) -> int:
        first: Intent = ChooseLanguage(language) if language else Start()
        self.show(await self.conversation.handle(_PERSON, first))
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if not sys.stdin.isatty() or lines is not sys.stdin:
                print(f"> {line}", file=self.out)
            chosen = self.button(line)
            intent = chosen.intent if chosen else self.intent(line)
            self.show(await self.conversation.handle(_PERSON, intent), chosen=chosen)
        return 0

    def button(self, line: str) -> Button | None:
        """The option a typed number picks, if it is one."""
        if line.isdigit() and 1 <= int(line) <= len(self.buttons):
            return self.buttons[int(line) - 1]
        return None

    def intent(self, line: str) -> Intent:
        if line.startswith("/"):
            return command_intent(line) or Typed(line)
        return Typed(line)

    def show(self, reply: Reply, *, chosen: Button | None = None) -> None:
        # Telegram shows the tapped message edited; here the echo is the option picked, or, for an answer
        # typed in words, the line the edit ends with ("Your answer: ...").
        if chosen is not None:
            print(f"  [{chosen.label}]", file=self.out)
        elif reply.edit_source:
            print(f"  [{reply.edit_source.splitlines()[-1]}]", file=self.out)
        for message in reply.messages:
            print(f"\n{message.text}", file=self.out)
            if message.buttons:
                self.buttons = [b for row in message.buttons for b in row]
                for number, button in enumerate(self.buttons, start=1):
                    print(f"  {number}. {button.label}", file=self.out)
        self.out.flush()
