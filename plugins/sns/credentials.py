"""botocore's default credential chain (the optional ``aws`` extra), for tenants without keys.

The chain is resolved once per provider, in a worker thread (it may read files or ask the
instance metadata service); botocore's refreshable credentials refresh themselves, again in a
worker thread when a refresh is due, so the event loop never blocks on it. Without botocore,
sends without static keys fail with ``configuration_error``.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import SecretStr

from plugins.sns.settings import SnsCredentials
from runtime.provider_kit import configuration_error

__all__ = ["MISSING_EXTRA", "NO_CREDENTIALS", "frozen_credentials", "load_chain", "refresh_due"]

MISSING_EXTRA = "Amazon SNS needs the aws extra: pip install 'phone-actions[aws]'"
NO_CREDENTIALS = (
    "Amazon SNS has no AWS credentials: access_key_id and secret_access_key are not set "
    "and botocore's default credential chain found none"
)


def load_chain() -> Any:
    """botocore's default credential chain, resolved (blocking: files, maybe the network).

    ``configuration_error`` when botocore is missing or the chain finds nothing; a failure
    inside botocore is reported by its type only (its message may name files or profiles).
    """
    try:
        session: Any = importlib.import_module("botocore.session")
    except ImportError:
        raise configuration_error(MISSING_EXTRA) from None
    try:
        found = session.get_session().get_credentials()
    except Exception as exc:  # botocore raises many kinds; none may escape as a crash
        raise configuration_error(
            f"Amazon SNS could not resolve AWS credentials ({type(exc).__name__})"
        ) from None
    if found is None:
        raise configuration_error(NO_CREDENTIALS)
    return found


def frozen_credentials(chain: Any) -> SnsCredentials:
    """The keys ``chain`` holds now (refreshed first if due: may block)."""
    try:
        frozen = chain.get_frozen_credentials()
    except Exception as exc:
        raise configuration_error(
            f"Amazon SNS could not refresh AWS credentials ({type(exc).__name__})"
        ) from None
    if not frozen.access_key or not frozen.secret_key:
        raise configuration_error(NO_CREDENTIALS)
    return SnsCredentials.model_construct(
        access_key_id=frozen.access_key,
        secret_access_key=SecretStr(frozen.secret_key),
        session_token=SecretStr(frozen.token) if frozen.token else None,
    )


def refresh_due(chain: Any) -> bool:
    """Whether ``get_frozen_credentials`` would refresh (IO) now; no IO itself."""
    refresh_needed = getattr(chain, "refresh_needed", None)
    return bool(refresh_needed()) if refresh_needed is not None else False
