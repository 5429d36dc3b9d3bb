"""Typed errors. The CLI turns each into one stderr line and an exit code."""

from __future__ import annotations


class ProcrunError(Exception):
    """An error the user can fix; printed as one line, never a traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ProcrunError):
    """Bad command-line input."""


class ConfigError(ProcrunError):
    """Bad file content, located by file and line so the user can jump to it."""

    def __init__(self, path: str, line: int | None, problem: str, fix: str = "", column: int | None = None) -> None:
        where = f"{path}:{line}" if line else path
        if line and column:
            where += f":{column}"
        text = f"{where}: {problem}"
        if fix:
            text += f"; fix: {fix}"
        super().__init__(text)
        self.path = path
        self.line = line
        self.problem = problem
        self.fix = fix
        self.column = column


class SessionError(ProcrunError):
    """No session to talk to, or a session already running."""

    exit_code = 1
