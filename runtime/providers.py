"""The provider contract: what a delivery plugin implements, and the registry that holds them.

A provider turns one rendered :class:`PhoneMessage` into a carrier hand-off. It declares its
``name``, its ``channels``, a pydantic ``config_model`` (public settings) and a
``credentials_model`` (secret, write-only), and implements ``async send``. It raises
:class:`~runtime.errors.ProviderError` on failure; anything else it raises is treated by the
pipeline as a failure that *may* have been handed off (so never as a reason to send twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel
from typing_extensions import TypeVar

from runtime.errors import ProviderError, UnknownProviderError
from runtime.events import Channel, ClientInfo, Purpose, RequestContext

__all__ = [
    "ConfigT",
    "CredentialsT",
    "PhoneMessage",
    "Provider",
    "ProviderError",
    "ProviderRegistry",
    "Receipt",
    "accepts_observer",
    "check_send",
    "enforces_timeout",
    "reaches_phones",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneMessage:
    """One rendered message, as a provider sees it.

    ``text`` is what the channel delivers: the SMS body, or for voice the script a call says
    (the code spelled digit by digit). It contains the code: never log it. ``timeout`` is the
    attempt's time budget in seconds, which a provider passes to its HTTP client.

    A plain frozen dataclass, not a pydantic model: the pipeline builds it from validated
    parts once per message, on the hot path.
    """

    id: str
    tenant: str
    recipient: str
    channel: Channel
    purpose: Purpose
    locale: str
    code: str = field(repr=False)
    text: str = field(repr=False)
    timeout: float
    user: dict[str, Any] = field(default_factory=dict, repr=False)
    client: ClientInfo = field(default_factory=ClientInfo, repr=False)
    request: RequestContext = field(default_factory=RequestContext, repr=False)

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout!r}")


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider's acknowledgement: the message was handed off to the carrier."""

    provider: str
    message_id: str | None = None
    status: str | None = None


ConfigT = TypeVar("ConfigT", bound=BaseModel, default=Any)
"""A provider's settings model; ``Any`` when not given (``Provider`` is ``Provider[Any, Any]``)."""
CredentialsT = TypeVar("CredentialsT", bound=BaseModel, default=Any)
"""A provider's credentials model; ``Any`` when not given."""


@runtime_checkable
class Provider(Protocol[ConfigT, CredentialsT]):
    """What ``register_providers`` hands to ``register``.

    Generic in its settings and credentials models, so that ``send`` is typed:
    ``Provider[InfobipConfig, InfobipCredentials]``. The registry holds
    ``Provider[Any, Any]``: it passes each provider the models it validated with that
    provider's own ``config_model`` and ``credentials_model``.

    Three more members tell the pipeline what it needs to know; the provider kit's base
    classes (:class:`runtime.provider_kit.ProviderBase`, ``HttpProvider``) declare them, and
    :func:`reaches_phones`, :func:`enforces_timeout` and :func:`accepts_observer` read them
    (with these defaults for a provider written before they existed):

    - ``reaches_phones`` (default ``True``): ``False`` for a sender that only stores messages
      (the outbox). A message it accepted is reported ``stored``, never ``delivered``.
    - ``enforces_timeout`` (default ``False``): ``True`` when ``send`` itself keeps to
      ``message.timeout`` (its HTTP client's total timeout); the pipeline then adds no timer.
    - ``accepts_observer`` (default ``False``): ``True`` when ``send`` takes a keyword
      ``observer`` (a :class:`runtime.http.HttpObserver`) and shows it every HTTP exchange:
      recordings capture the attempt through it, replays answer from it.
    """

    # Read-only members, so that a class attribute of a narrower type satisfies them.
    @property
    def name(self) -> str: ...
    @property
    def channels(self) -> frozenset[Channel]: ...
    @property
    def config_model(self) -> type[ConfigT]: ...
    @property
    def credentials_model(self) -> type[CredentialsT]: ...
    @property
    def reaches_phones(self) -> bool: ...
    @property
    def enforces_timeout(self) -> bool: ...
    @property
    def accepts_observer(self) -> bool: ...

    async def send(
        self, message: PhoneMessage, config: ConfigT, credentials: CredentialsT
    ) -> Receipt:
        """Deliver ``message``; raise :class:`ProviderError` saying whether it was handed off."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections; called once when the runtime shuts down."""
        ...


def reaches_phones(provider: Provider[Any, Any]) -> bool:
    """``provider.reaches_phones``: whether a message it accepted went towards a phone (not
    only stored); ``True`` for a provider that does not declare it."""
    return bool(getattr(provider, "reaches_phones", True))


def enforces_timeout(provider: Provider[Any, Any]) -> bool:
    """``provider.enforces_timeout``: whether its ``send`` keeps to ``message.timeout`` by
    itself; ``False`` for a provider that does not declare it."""
    return bool(getattr(provider, "enforces_timeout", False))


def check_send(
    provider: Provider[Any, Any], message: PhoneMessage, config: Any, credentials: Any
) -> None:
    """Raise the :class:`ProviderError` (``configuration_error``) that ``provider.send`` would
    raise for ``message`` with these settings and credentials before any request: the
    provider's own ``check`` when it declares one (the provider kit's bases do), else nothing.
    """
    check = getattr(provider, "check", None)
    if check is not None:
        check(message, config, credentials)


def accepts_observer(provider: Provider[Any, Any]) -> bool:
    """``provider.accepts_observer``: whether its ``send`` takes ``observer=``; ``False`` for a
    provider that does not declare it."""
    return bool(getattr(provider, "accepts_observer", False))


class ProviderRegistry:
    """Providers by name, filled through the ``register_providers`` hook."""

    def __init__(self) -> None:
        self._providers: dict[str, Provider[Any, Any]] = {}
        self._owners: dict[str, str] = {}

    def register(self, provider: Provider[Any, Any], *, owner: str = "?") -> None:
        """Add ``provider``; a second provider with the same name is a plugin error."""
        missing = [
            attr
            for attr in ("name", "channels", "config_model", "credentials_model", "send")
            if not hasattr(provider, attr)
        ]
        if missing:
            raise TypeError(f"provider {provider!r} lacks {', '.join(missing)}")
        if provider.name in self._providers:
            raise ValueError(
                f"provider {provider.name!r} registered twice "
                f"(by {self._owners[provider.name]} and by {owner})"
            )
        self._providers[provider.name] = provider
        self._owners[provider.name] = owner

    def forget(self, owner: str) -> None:
        """Remove every provider that ``owner`` registered (a plugin found broken)."""
        for name in [n for n, o in self._owners.items() if o == owner]:
            del self._providers[name], self._owners[name]

    def get(self, name: str) -> Provider[Any, Any]:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProviderError(
                f"no provider named {name!r}{self.closest(name)}; "
                f"registered: {', '.join(sorted(self._providers)) or 'none'}"
            ) from None

    def closest(self, name: str) -> str:
        """`` (did you mean 'twilio'?)`` for the registered name closest to ``name`` (difflib),
        or ``""`` when none is close."""
        import difflib

        close = difflib.get_close_matches(name, sorted(self._providers), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def owner(self, name: str) -> str:
        return self._owners[name]

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __iter__(self) -> Iterator[Provider[Any, Any]]:
        return iter(sorted(self._providers.values(), key=lambda p: p.name))

    async def aclose(self) -> None:
        for provider in self._providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
