"""The definitions a running session starts instances from: the Procfile, the environment and
the port slots, as the session began with them and as ``--watch`` changes them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from procrun.project import plan as formation
from procrun.project import procfile
from procrun.project.files import App, env_file_list, read_dotenv, read_text, rel, type_environment
from procrun.project.plan import RELEASE_TYPE, ROUTED_TYPE, Instance, Plan


class Live:
    """The definitions a running session starts instances from; --watch may change them."""

    def __init__(self, app: App, plan: Plan, routed: bool) -> None:
        self.app = app
        self.root = app.root
        self.procfile = app.procfile
        self.procfile_path = os.path.abspath(app.procfile.path)
        files, self.env_required = env_file_list(app.settings.env_files)
        self.dotenv_paths = tuple(os.path.abspath(rel(app.root, f)) for f in files)
        per_type = app.settings.type_settings
        self.env_paths = self.dotenv_paths + tuple(  # every env file a change to which is a deploy
            os.path.abspath(os.path.join(app.root, f)) for c in per_type.values() for f in c.env_file)
        self.type_env = app.type_env
        self.cwds = {t: c.cwd for t, c in per_type.items() if c.cwd}
        self.config_path = os.path.abspath(app.settings.config_path)
        self.env = app.environment()
        # --chaos-backing: the proxied URLs an instance is given (each its own port), and what is
        # told the new .env on a reload (a service URL that changed is followed or dropped)
        self.instance_env: Callable[[str], Mapping[str, str]] | None = None
        self.retarget: Callable[[Mapping[str, str]], None] | None = None
        # Types started later (scale, Procfile edits) keep honcho's port slots after the started ones.
        self.port_order = plan.types + tuple(t for t in app.procfile.names if t not in plan.types and t != RELEASE_TYPE)
        self.routed = routed

    def make_instance(self, type_name: str, index: int) -> Instance:
        env = {**self.env, **self.type_env.get(type_name, {})}
        if self.instance_env is not None:
            env.update(self.instance_env(f"{type_name}.{index}"))
        inst = formation.instance(self.procfile, self.port_order, type_name, index, self.app.settings.port, env,
                                  self.cwds.get(type_name, ""))
        if self.routed and type_name == ROUTED_TYPE:  # the router owns the base port; the session picks one
            inst = formation.with_port(inst, formation.AUTO_PORT)
        return inst

    def reload_procfile(self) -> procfile.Procfile:
        self.procfile = procfile.parse(read_text(self.procfile_path, "Procfile"), self.app.procfile.path)
        return self.procfile

    def reload_env(self) -> None:
        """The .env files and each type's env files read again (ConfigError: kept as they were)."""
        dotenv, _ = read_dotenv([os.path.relpath(p) for p in self.dotenv_paths], self.env_required)
        per_type = self.app.settings.type_settings
        type_env = {t: type_environment(self.root, self.app.settings.config_path, t, c) for t, c in per_type.items()}
        if self.retarget is not None:
            self.retarget(dotenv)
        self.env = {**os.environ, **dotenv}
        self.type_env = {t: e for t, e in type_env.items() if e}

    def add_type(self, type_name: str) -> None:
        if type_name not in self.port_order:
            self.port_order = (*self.port_order, type_name)
