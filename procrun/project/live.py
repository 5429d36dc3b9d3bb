"""The definitions a running session starts instances from: the Procfile, the environment and
the port slots, as the session began with them and as ``--watch`` changes them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from procrun.project import plan as formation
from procrun.project import procfile
from procrun.project.files import App, env_file_list, read_dotenv, read_text, rel
from procrun.project.plan import ROUTED_TYPE, Instance, Plan


class Live:
    """The definitions a running session starts instances from; --watch may change them."""

    def __init__(self, app: App, plan: Plan, routed: bool) -> None:
        self.app = app
        self.root = app.root
        self.procfile = app.procfile
        self.procfile_path = os.path.abspath(app.procfile.path)
        files, self.env_required = env_file_list(app.settings.env_files)
        self.env_paths = tuple(os.path.abspath(rel(app.root, f)) for f in files)
        self.config_path = os.path.abspath(app.settings.config_path)
        self.env = app.environment()
        # --chaos-backing: the proxied URLs an instance is given (each its own port), and what is
        # told the new .env on a reload (a service URL that changed is followed or dropped)
        self.instance_env: Callable[[str], Mapping[str, str]] | None = None
        self.retarget: Callable[[Mapping[str, str]], None] | None = None
        # Types started later (scale, Procfile edits) keep honcho's port slots after the started ones.
        self.port_order = plan.types + tuple(t for t in app.procfile.names if t not in plan.types)
        self.routed = routed

    def make_instance(self, type_name: str, index: int) -> Instance:
        env = self.env if self.instance_env is None else {**self.env, **self.instance_env(f"{type_name}.{index}")}
        inst = formation.instance(self.procfile, self.port_order, type_name, index, self.app.settings.port, env)
        if self.routed and type_name == ROUTED_TYPE:  # the router owns the base port; the session picks one
            inst = formation.with_port(inst, formation.AUTO_PORT)
        return inst

    def reload_procfile(self) -> procfile.Procfile:
        self.procfile = procfile.parse(read_text(self.procfile_path, "Procfile"), self.app.procfile.path)
        return self.procfile

    def reload_env(self) -> None:
        dotenv, _ = read_dotenv([os.path.relpath(p) for p in self.env_paths], self.env_required)
        if self.retarget is not None:
            self.retarget(dotenv)
        self.env = {**os.environ, **dotenv}

    def add_type(self, type_name: str) -> None:
        if type_name not in self.port_order:
            self.port_order = (*self.port_order, type_name)
