"""Which types chaos may disrupt, checked against the Procfile. Pure and cheap: a start checks
it before its first process, long before the chaos modules are imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procrun.errors import UsageError

if TYPE_CHECKING:
    from procrun.project.procfile import Procfile
    from procrun.project.settings import Settings


def chaos_types(s: Settings, procfile: Procfile) -> tuple[str, ...]:
    """The types chaos may disrupt (empty: all), refused when the Procfile has no such type."""
    types = s.chaos_types
    opted_out = {t for t, c in s.type_settings.items() if c.chaos is False}
    if opted_out:  # procrun.yaml types.X.chaos: false
        types = tuple(t for t in (types or procfile.names) if t not in opted_out)
    for name in types:
        if procfile.get(name) is None and procfile.types:
            raise UsageError(f"--chaos-types: {procfile.path} has no process type {name!r}; "
                             f"it defines {', '.join(procfile.names)}")
    return types
