"""The plugin manager: built-in plugins, third-party plugins from entry points, and checks.

There is no module-level manager: :func:`get_plugin_manager` builds a fresh one, so tests and
embedding applications never share hook state.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
from collections.abc import Iterable
from functools import cache
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pluggy

from runtime import hookspecs
from runtime.errors import PluginError
from runtime.providers import Provider, ProviderRegistry
from runtime.settings import Settings

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PhonePluginManager",
    "check_builtin_plugins",
    "collect_providers",
    "get_plugin_manager",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.outbox",
    "plugins.twilio",
    "plugins.custom_action",
    "plugins.clickatell",
    "plugins.clicksend",
    "plugins.esendex",
    "plugins.infobip",
    "plugins.messagebird",
    "plugins.mitto",
    "plugins.plivo",
    "plugins.sinch",
    "plugins.sns",
    "plugins.telesign",
    "plugins.vonage",
    "plugins.recorder",
)


def check_builtin_plugins() -> None:
    """Fail with one line when the ``runtime`` or ``plugins`` found is not the installed one.

    The distribution installs two top-level packages side by side, ``runtime`` and
    ``plugins``. A folder named ``plugins`` in the current directory (``python -m``, ``-c``)
    or on ``PYTHONPATH`` comes first on ``sys.path`` and hides ours; without this check the
    first built-in import fails with ``No module named 'plugins.outbox'``.
    """
    home = Path(__file__).resolve().parent.parent  # where our runtime package lives
    installed = _installed_home()
    if installed is not None and installed != home:
        raise PluginError(
            f"the package 'runtime' is imported from {home / 'runtime'}, which shadows the "
            f"installed phone-actions ({installed / 'runtime'}): rename that folder or run "
            "from another one"
        )
    try:
        package = importlib.import_module("plugins")
    except ImportError as exc:
        raise PluginError(
            f"the built-in plugins are not installed: no package 'plugins' next to {home}"
        ) from exc
    found = _package_folder(package)
    if found is None or found.parent != home:
        shown = found if found is not None else "a namespace package"
        raise PluginError(
            f"the package 'plugins' is imported from {shown}, which shadows phone-actions' "
            f"built-in plugins ({home / 'plugins'}): rename that folder or run from another one"
        )
    absent = [name for name in DEFAULT_PLUGINS if not _inside(name, found)]
    if absent:
        raise PluginError(
            f"the package 'plugins' in {found} lacks the built-in plugins {', '.join(absent)}: "
            "reinstall phone-actions"
        )


@cache
def _installed_home() -> Path | None:
    """The folder holding the installed ``runtime`` and ``plugins`` packages: site-packages,
    or the project of an editable install; None when phone-actions is not installed."""
    try:
        dist = distribution("phone-actions")
    except PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.as_posix() == "runtime/__init__.py":
            return Path(str(dist.locate_file(file))).resolve().parent.parent
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return None
    from urllib.request import url2pathname  # only here: it costs 15 ms to import

    url = direct.get("url", "")
    if direct.get("dir_info", {}).get("editable") and url.startswith("file://"):
        return Path(url2pathname(urlsplit(url).path)).resolve()
    return None


def _inside(module: str, folder: Path) -> bool:
    """``module`` is found, and in ``folder`` (not taken from another installation)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    return folder in Path(spec.origin).resolve().parents


def _package_folder(package: ModuleType) -> Path | None:
    """The folder of a regular package (None for a namespace package)."""
    file = getattr(package, "__file__", None)
    return Path(file).resolve().parent if file else None


class PhonePluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which third-party plugins failed to load, and why."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.load_errors: dict[str, str] = {}

    def load_entrypoint_plugins(
        self, *, strict: bool = False, eps: Iterable[EntryPoint] | None = None
    ) -> None:
        """Register each ``phone_actions`` entry point; a broken one is reported and skipped.

        ``strict`` turns a broken plugin into a :class:`PluginError`.
        """
        found = entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps
        for ep in found:
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
            configuring = False
            try:
                plugin = ep.load()
                configuring = True  # register calls its configure (historic) at once
                self.register(plugin, name=ep.name)
                configuring = False
                self.check_pending()
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if configuring and self.get_plugin(ep.name) is not None:
                    reason = f"configure failed: {reason}"
                if strict:
                    raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed: {reason}") from exc
                plugin_obj = self.get_plugin(ep.name)
                if plugin_obj is not None:
                    self.unregister(plugin_obj)
                self.load_errors[ep.name] = reason
                log.warning("skipped plugin %r (%s): %s", ep.name, ep.value, reason)

    def check_pending(self) -> None:
        """Fail loudly when a plugin implements a hook that does not exist (a misspelt name),
        or ``around_attempt`` other than as a ``wrapper=True`` generator."""
        try:
            super().check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc
        for impl in self.hook.around_attempt.get_hookimpls():
            if not impl.wrapper or not inspect.isgeneratorfunction(impl.function):
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: around_attempt must be a generator marked "
                    "@hookimpl(wrapper=True) that yields once"
                )


def get_plugin_manager(
    *,
    settings: Settings | None = None,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    strict: bool | None = None,
) -> PhonePluginManager:
    """A fresh manager with the built-ins, ``plugins`` and (unless disabled) installed plugins.

    ``strict`` defaults to ``settings.strict_plugins`` (``PHONE_ACTIONS_STRICT_PLUGINS``).
    ``configure`` is called historically with ``settings`` when they are given: each plugin's
    as it is registered, so that a failure names its plugin. An installed plugin whose
    ``configure`` raises is skipped as one that does not load (a :class:`PluginError` in
    strict mode); a built-in plugin or one of ``plugins`` is a :class:`PluginError`.
    """
    check_builtin_plugins()
    pm = PhonePluginManager()
    if settings is not None:  # before any plugin: each is configured when registered
        pm.hook.configure.call_historic(kwargs={"settings": settings})
    for module_name in DEFAULT_PLUGINS:
        _register(pm, importlib.import_module(module_name), module_name)
    for plugin in plugins:
        _register(pm, plugin, None)
    pm.check_pending()
    if load_entrypoints:
        if strict is None:
            strict = settings.strict_plugins if settings is not None else False
        pm.load_entrypoint_plugins(strict=strict)
    return pm


def _register(pm: PhonePluginManager, plugin: object, name: str | None) -> None:
    """Register a plugin the program gave (built-in or ``plugins``): its ``configure`` failing
    is one :class:`PluginError` naming it, never a traceback."""
    try:
        pm.register(plugin, name=name)
    except Exception as exc:
        if not pm.is_registered(plugin):
            raise  # refused before its hooks ran (a name taken twice): as pluggy says it
        shown = name or pm.get_name(plugin) or repr(plugin)
        raise PluginError(
            f"plugin {shown!r}: configure failed: {type(exc).__name__}: {exc}"
        ) from exc


def collect_providers(
    pm: PhonePluginManager, settings: Settings, *, strict: bool | None = None
) -> ProviderRegistry:
    """Call every ``register_providers`` implementation, recording which plugin owns each.

    A third-party plugin that fails here (raises, registers a non-provider or a taken name) is
    skipped whole, as one that fails to load: its providers are left out, its other hooks
    (``before_send``, ``after_send``...) are unregistered, and ``pm.load_errors`` says why.
    In strict mode, and for the built-in plugins, it is a :class:`PluginError` naming the
    plugin.
    """
    strict = settings.strict_plugins if strict is None else strict
    registry = ProviderRegistry()
    for impl in pm.hook.register_providers.get_hookimpls():
        owner = pm.get_name(impl.plugin) or repr(impl.plugin)
        staged: list[Provider] = []
        arguments: dict[str, Any] = {"register": staged.append, "settings": settings}
        try:
            impl.function(*(arguments[name] for name in impl.argnames))
            for provider in staged:
                registry.register(provider, owner=owner)
        except Exception as exc:
            reason = f"register_providers failed: {type(exc).__name__}: {exc}"
            if strict or owner in DEFAULT_PLUGINS:
                raise PluginError(f"plugin {owner!r}: {reason}") from exc
            registry.forget(owner)
            if pm.is_registered(impl.plugin):  # half a plugin would run its other hooks
                pm.unregister(impl.plugin)
            pm.load_errors[owner] = reason
            log.warning("skipped plugin %r: %s", owner, reason)
    return registry
