"""A ServiceStore on each backend (SQLite, PostgreSQL) and a fresh tenant per test."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from sqlalchemy import Engine

from runtime.store.crypto import Keyring
from runtime.store.service import ServiceStore


@pytest.fixture
def keyring() -> Keyring:
    return Keyring((os.urandom(32),))


@pytest.fixture
def store(engine: Engine, keyring: Keyring) -> ServiceStore:
    return ServiceStore(engine, keyring)


def new_tenant(store: ServiceStore) -> str:
    """A tenant of this test only (PostgreSQL's test database is shared and kept)."""
    tenant = f"t-{uuid.uuid4().hex[:16]}"
    store.tenants.create(tenant, "Test")
    return tenant


@pytest.fixture
def tenant_a(store: ServiceStore) -> str:
    return new_tenant(store)


@pytest.fixture
def tenant_b(store: ServiceStore) -> str:
    return new_tenant(store)


def master_key_text(keyring: Keyring) -> str:
    return base64.b64encode(keyring.keys[0]).decode()


SPM = [{"id": "send-phone-message", "version": "v2"}]
CPP = [{"id": "custom-phone-provider", "version": "v1"}]
SPM_CODE = """
def on_execute_send_phone_message(event, api):
    if event.secrets.API_KEY != "k-123":
        raise ValueError("the action did not get its secret")
    return {"message_id": "from-the-database"}
"""
