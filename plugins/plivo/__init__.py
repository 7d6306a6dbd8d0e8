"""Plivo provider plugin: one-time codes by SMS and by voice call through Plivo's REST API.

Voice calls fetch their XML from this service's answer app: run :func:`serve_answers` where
the tenants' ``answer_base_url`` points (see ``docs/providers/plivo.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plugins.plivo.answers import AnswerStore, answer_app, serve_answers
from plugins.plivo.provider import PlivoConfig, PlivoCredentials, PlivoProvider
from runtime import hookimpl

if TYPE_CHECKING:
    from runtime.providers import Provider
    from runtime.settings import Settings

__all__ = [
    "AnswerStore",
    "PlivoConfig",
    "PlivoCredentials",
    "PlivoProvider",
    "answer_app",
    "register_providers",
    "serve_answers",
]


@hookimpl
def register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register the Plivo provider; its session and answer store open on first use."""
    register(PlivoProvider(settings=settings))
