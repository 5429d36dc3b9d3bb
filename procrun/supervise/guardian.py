"""The guardian: kills what a session started if the session itself dies.

A small process (on Linux a ``/bin/sh`` of about 1 MiB, elsewhere a Python one; see
procrun.platform) started in its own session with stdin the read end of a pipe whose
write end only the session holds. The session sends it the temporary roots it
creates, one per line, and ``clean`` when it has stopped everything itself. If the pipe reaches EOF without
``clean`` (the session died, even by SIGKILL), the guardian SIGKILLs every
process whose environment carries ``PROCRUN_SESSION=<marker>`` (daemonised
ones included, repeating while it finds any) and removes those roots.
"""

from __future__ import annotations

import os

MARKER_VAR = "PROCRUN_SESSION"


def command(marker: str, keep: bool) -> list[str]:
    from procrun.platform import backend

    return backend().guardian_command(marker, keep)  # type: ignore[no-any-return]


class Guardian:
    """The running guardian: told the temporary roots as they are made, and ``clean`` at the end.
    Starting it also contains procrun, where the system allows (``contain``)."""

    def __init__(self, marker: str, keep: bool) -> None:
        import subprocess

        self.cgroup: str | None = None  # contain()
        read_fd, self._pipe = os.pipe()
        env = {k: v for k, v in os.environ.items() if k != MARKER_VAR}
        try:
            self.process = subprocess.Popen(command(marker, keep), stdin=read_fd, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                                            close_fds=True)
        except BaseException:
            os.close(self._pipe)
            raise
        finally:
            os.close(read_fd)
        self.contain()  # (once the guardian runs: it stays outside the cgroup)

    @property
    def pid(self) -> int:
        return self.process.pid

    def contain(self) -> None:
        """Where the system allows (Linux, cgroup v2 delegated): procrun moves into a cgroup of its
        own, so all it starts is in it; the guardian (outside) kills that cgroup if procrun dies."""
        from procrun.platform import backend

        self.cgroup = backend().cgroup_enter(f"procrun-{os.getpid()}")
        if self.cgroup is not None and self._pipe is not None:
            os.write(self._pipe, b"cgroup:" + os.fsencode(self.cgroup) + b"\n")

    def remove_on_death(self, root: str) -> None:
        """A temporary root the guardian removes if the session dies without cleaning up."""
        if self._pipe is not None:
            os.write(self._pipe, os.fsencode(root) + b"\n")

    def release(self) -> None:
        """Everything is stopped: tell the guardian so, and let it go."""
        import subprocess

        if self.cgroup is not None:  # out of it first: the guardian empties and removes it
            from procrun.platform import backend

            backend().cgroup_leave(self.cgroup)
        if self._pipe is not None:
            try:
                os.write(self._pipe, b"clean\n")
            except OSError:
                pass
            os.close(self._pipe)
            self._pipe = None
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
