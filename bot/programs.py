"""The programs (dated rulesets) this deployment ships, and which one it screens for now.

Every program under flows/programs is loaded and checked at startup, so a switch at run time can never meet a
broken file. The active one comes from the admin's last switch (kept in the database), else the PROGRAM setting.
Everything that screens or explains reads `Programs.active` when it needs it, so a switch applies from the next
question on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from flows.loader import Program


class Programs:
    def __init__(self, programs: Iterable[Program], active: str) -> None:
        self._programs: Mapping[str, Program] = {p.id: p for p in programs}
        if active not in self._programs:
            raise ValueError(f"unknown program {active!r}; shipped: {', '.join(sorted(self._programs))}")
        self._active = self._programs[active]

    @classmethod
    def single(cls, program: Program) -> Programs:
        """Just one program (the terminal chat, tests)."""
        return cls((program,), program.id)

    @property
    def active(self) -> Program:
        return self._active

    def get(self, program_id: str) -> Program | None:
        return self._programs.get(program_id)

    def all(self) -> list[Program]:
        """Every shipped program, by the date its rules came into force."""
        return sorted(self._programs.values(), key=lambda p: (p.ruleset.in_force_from, p.id))

    def activate(self, program_id: str) -> Program:
        program = self._programs.get(program_id)
        if program is None:
            raise ValueError(f"unknown program {program_id!r}")
        self._active = program
        return program

    def superseded_by(self, today: dt.date) -> list[Program]:
        """Shipped programs in force by `today` that came after the active one: it may be telling old rules."""
        since = self._active.ruleset.in_force_from
        return [p for p in self.all() if since < p.ruleset.in_force_from <= today]
