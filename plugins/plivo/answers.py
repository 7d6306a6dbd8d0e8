"""Answer documents for Plivo voice calls: stored before the call, served when Plivo asks.

Plivo's Call API takes no inline XML: when the callee picks up, Plivo fetches
the call's ``answer_url`` and plays the XML it gets. So, before the Call request, the plugin
stores a ``<Speak>`` document under a random token (:class:`AnswerStore`) and sends
``{answer_base_url}/plivo/answer/{token}`` as the ``answer_url``; this service's answer app
(:func:`answer_app`, run by :func:`serve_answers`) serves it.

The document contains the code, so:

- the token is ``secrets.token_urlsafe(32)`` (256 random bits): the URL is the only key;
- a document lives until its expiry (``answer_ttl``, 600 s by default) and not a second
  longer. It is not deleted on first fetch, because Plivo may fetch it again (a retry after a
  slow answer, or a POST after a failed GET). Expired rows are purged on every write;
- an unknown or expired token gets a bare 404: nothing tells a prober which tokens existed;
- the app writes no access log, since the request line carries the token.

The store is SQLAlchemy on its own ``MetaData`` (one table, ``plivo_answers``): SQLite in the
data folder by default, or the shared PostgreSQL database when ``PHONE_ACTIONS_DATABASE_URL``
names one, so that the node that places a call and the node that serves its answer need not be
the same.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web
from sqlalchemy import (
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
)

from runtime.locales import LanguageTable
from runtime.store.db import create_engine_for

if TYPE_CHECKING:
    from runtime.settings import Settings

__all__ = [
    "ANSWER_PATH",
    "DEFAULT_ANSWER_TTL",
    "SPEAK_LANGUAGES",
    "SPEAK_VOICES",
    "AnswerStore",
    "answer_app",
    "answer_metadata",
    "serve_answers",
    "speak_language",
    "speak_voice",
    "speak_xml",
]

ANSWER_PATH = "/plivo/answer/{token}"
DEFAULT_ANSWER_TTL = 600
SPEAK_REPEATS = 2
DEFAULT_LANGUAGE = "en-US"

# The <Speak> element's languages and the voices each has, as Plivo's XML reference lists them
# (plivo.com/docs/voice/xml/audio-output, "Speak", "Supported Languages"). Plivo's other pages
# list more codes (arb, cmn-CN, ja-JP, ...), behind Polly voices or the Speak API: only this
# table is sent. A language Plivo does not list falls back to en-US, never to a code it lacks.
Voice = Literal["WOMAN", "MAN"]
SPEAK_VOICES: dict[str, frozenset[Voice]] = {
    "da-DK": frozenset({"WOMAN"}),
    "nl-NL": frozenset({"WOMAN", "MAN"}),
    "en-AU": frozenset({"WOMAN", "MAN"}),
    "en-GB": frozenset({"WOMAN", "MAN"}),
    "en-US": frozenset({"WOMAN", "MAN"}),
    "fr-FR": frozenset({"WOMAN", "MAN"}),
    "fr-CA": frozenset({"WOMAN"}),
    "de-DE": frozenset({"WOMAN", "MAN"}),
    "it-IT": frozenset({"WOMAN", "MAN"}),
    "pl-PL": frozenset({"WOMAN", "MAN"}),
    "pt-PT": frozenset({"MAN"}),
    "pt-BR": frozenset({"WOMAN", "MAN"}),
    "ru-RU": frozenset({"WOMAN"}),
    "es-ES": frozenset({"WOMAN", "MAN"}),
    "es-US": frozenset({"WOMAN", "MAN"}),
    "sv-SE": frozenset({"WOMAN"}),
}
SPEAK_LANGUAGES = LanguageTable(tuple(SPEAK_VOICES), default=DEFAULT_LANGUAGE)
DEFAULT_VOICE: Voice = "WOMAN"  # Plivo's default; a language without it gets MAN


answer_metadata = MetaData()
"""The answer store's own schema (not the runtime's: the table belongs to this plugin)."""

plivo_answers = Table(
    "plivo_answers",
    answer_metadata,
    Column("token", String(64), primary_key=True),
    Column("xml", Text, nullable=False),
    # Seconds since the epoch: a float compares the same way on SQLite and PostgreSQL,
    # where a timezone-aware DateTime would not.
    Column("expires_at", Float, nullable=False, index=True),
)

_c = plivo_answers.c
_PUT = insert(plivo_answers)
_PURGE = delete(plivo_answers).where(_c.expires_at <= bindparam("now"))
_DISCARD = delete(plivo_answers)
_GET = select(_c.xml, _c.expires_at)

Clock = Callable[[], float]


def speak_language(locale: str | None) -> str:
    """The ``<Speak language>`` for ``locale``: a code Plivo's <Speak> lists (``en_GB`` ->
    ``en-GB``, ``fr`` -> ``fr-FR``, ``es-AR`` -> ``es-ES``), else ``en-US`` (``zh``, ``ar``)."""
    return SPEAK_LANGUAGES.pick(locale)


def speak_voice(language_tag: str) -> Voice:
    """``WOMAN`` (Plivo's default), or ``MAN`` for a language that has only that (pt-PT)."""
    voices = SPEAK_VOICES.get(language_tag, frozenset({DEFAULT_VOICE}))
    return DEFAULT_VOICE if DEFAULT_VOICE in voices else "MAN"


def speak_xml(text: str, language_tag: str, *, loop: int = SPEAK_REPEATS) -> str:
    """The Plivo XML that says ``text`` ``loop`` times: ``<Response><Speak language=".."
    voice=".." loop="2">text</Speak></Response>``, with a voice the language has, escaped by
    ElementTree (the text is never spliced)."""
    response = Element("Response")
    attributes = {"language": language_tag, "voice": speak_voice(language_tag), "loop": str(loop)}
    speak = SubElement(response, "Speak", attributes)
    speak.text = text
    return '<?xml version="1.0" encoding="UTF-8"?>' + tostring(response, encoding="unicode")


class AnswerStore:
    """Answer documents by token, each until its expiry.

    Blocking methods (``put``, ``get``, ``discard``) and their ``a``-prefixed async forms: a
    local SQLite file answers in microseconds and is called inline; a database server is
    called from a worker thread, off the event loop. ``clock`` gives seconds since the epoch
    (tests inject one instead of sleeping).
    """

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.local = engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = time.time) -> AnswerStore:
        """A store on the database at ``url``, its table created when missing."""
        return cls(create_engine_for(url, schema=answer_metadata), clock=clock)

    def put(self, xml: str, ttl: float) -> str:
        """Store ``xml`` for ``ttl`` seconds and return its new token; purge expired rows."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(_PURGE, {"now": now})
            conn.execute(_PUT, {"token": token, "xml": xml, "expires_at": now + ttl})
        return token

    def get(self, token: str) -> str | None:
        """The document for ``token``, or None when unknown or expired."""
        with self.engine.connect() as conn:
            row = conn.execute(_GET.where(_c.token == token)).first()
        if row is None or row.expires_at <= self.clock():
            return None
        return str(row.xml)

    def discard(self, token: str) -> None:
        """Forget ``token`` now (its call was refused: nobody will fetch it)."""
        with self.engine.begin() as conn:
            conn.execute(_DISCARD.where(_c.token == token))

    async def aput(self, xml: str, ttl: float) -> str:
        if self.local:
            return self.put(xml, ttl)
        return await asyncio.to_thread(self.put, xml, ttl)

    async def aget(self, token: str) -> str | None:
        if self.local:
            return self.get(token)
        return await asyncio.to_thread(self.get, token)

    async def adiscard(self, token: str) -> None:
        if self.local:
            self.discard(token)
        else:
            await asyncio.to_thread(self.discard, token)

    def close(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()


STORE_KEY = web.AppKey("plivo_answer_store", AnswerStore)


async def _answer(request: web.Request) -> web.Response:
    xml = await request.app[STORE_KEY].aget(request.match_info["token"])
    if xml is None:
        return web.Response(status=404)
    return web.Response(
        text=xml,
        content_type="application/xml",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def answer_app(store: AnswerStore) -> web.Application:
    """The web app Plivo fetches answer documents from: ``GET`` or ``POST
    /plivo/answer/{token}`` -> 200 ``application/xml``; unknown or expired -> bare 404."""
    app = web.Application()
    app[STORE_KEY] = store
    app.router.add_route("GET", ANSWER_PATH, _answer)
    app.router.add_route("POST", ANSWER_PATH, _answer)
    return app


async def serve_answers(settings: Settings, host: str, port: int) -> None:
    """Serve answer documents from ``settings``' database on ``host:port`` until cancelled.

    Put it behind the public HTTPS URL that tenants set as ``answer_base_url``. No access log
    is written: request lines carry tokens.
    """
    store = AnswerStore.from_url(settings.resolved_database_url)
    runner = web.AppRunner(answer_app(store), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        store.close()
