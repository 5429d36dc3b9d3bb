"""The control socket as a session service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.control.commands import Controller
from procrun.control.server import ControlServer
from procrun.supervise.session import Service

if TYPE_CHECKING:
    from procrun.supervise.shared import Shared
    from procrun.supervise.session import Session


class ControlService(Service):
    def __init__(self, session: Session, shared: Shared, path: str, known_types: Callable[[], tuple[str, ...]],
                 root: str) -> None:
        super().__init__(session)
        self.shared = shared
        self.path = path
        self.known_types = known_types
        self.root = root
        self.server: ControlServer | None = None

    async def start(self) -> None:
        from functools import partial

        from procrun.control import streams

        session = self.session
        controller = Controller(session, self.shared, self.known_types, self.root)
        self.server = ControlServer(self.path, controller.handle, {"attach": partial(streams.attach, session, self.shared),
                                                                   "subscribe": partial(streams.subscribe, controller)})
        await self.server.start()
        if self.server.stale:
            session.say("replaced a stale control socket left by a session that did not exit cleanly")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
