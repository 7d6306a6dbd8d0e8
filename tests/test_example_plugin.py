"""The example third-party plugin package (tests/example_plugin), installed with pip through
its entry point, shows in ``phone-actions providers`` and delivers through the pipeline."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from runtime import PhoneMessageRequest
from runtime.cli import app
from runtime.delivery import Pipeline
from runtime.tenants import TomlTenantDirectory
from tests.conftest import make_settings
from tests.support.stub_server import StubServer

PACKAGE = Path(__file__).parent / "example_plugin"
TOKEN = "example-token-8f7e6d"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the package (offline, from a copy) into a fresh target folder."""
    work = tmp_path_factory.mktemp("example")
    source = work / "src"
    shutil.copytree(PACKAGE, source)
    site = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    assert (site / "phone_actions_example").is_dir()
    return site


@pytest.fixture
def site(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    yield installed
    sys.modules.pop("phone_actions_example", None)


@pytest.fixture
def exampletel() -> Iterator[StubServer]:
    with StubServer() as server:
        server.respond(202, {"id": "ex-1"})
        yield server


def test_it_appears_in_phone_actions_providers(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["providers", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in orjson.loads(result.output)}
    assert rows["exampletel"]["plugin"] == "example"
    assert rows["exampletel"]["channels"] == ["sms"]
    assert [f["name"] for f in rows["exampletel"]["credentials"]] == ["token"]


async def test_it_delivers_through_the_pipeline(
    site: Path, tmp_path: Path, exampletel: StubServer
) -> None:
    tenants = TomlTenantDirectory.from_mapping(
        {
            "tenants": {
                "acme": {
                    "friendly_name": "Acme",
                    "message_types": ["sms"],
                    "provider": "exampletel",
                    "provider_settings": {"sender": "Acme", "base_url": exampletel.url},
                    "credentials_env": {"token": "ACME_EXAMPLE_TOKEN"},
                }
            }
        },
        environ={"ACME_EXAMPLE_TOKEN": TOKEN},
    )
    pipeline = Pipeline.from_settings(make_settings(tmp_path), tenants=tenants)
    try:
        report = await pipeline.deliver(
            PhoneMessageRequest.create(tenant="acme", recipient="+447911123456", code="735194")
        )
    finally:
        await pipeline.aclose()
    assert (report.status, report.delivered_by) == ("delivered", "exampletel")
    assert report.attempts[0].message_id == "ex-1"
    (sent,) = exampletel.requests
    assert sent.path == "/v1/sms"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert orjson.loads(sent.body)["to"] == "+447911123456"


def test_tenants_import_takes_its_provider_and_refuses_it_when_not_installed(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider names a tenants file may use are the loaded registry's, not a fixed list."""
    monkeypatch.setenv("PHONE_ACTIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PHONE_ACTIONS_DATABASE_URL", raising=False)
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(  # settings and credentials it can send with: the import checks them
        '[tenants.acme]\nprovider = "exampletel"\nprovider_settings = { sender = "Example" }\n'
        'credentials_env = { token = "EXAMPLETEL_TOKEN" }\n'
    )
    monkeypatch.setenv("EXAMPLETEL_TOKEN", TOKEN)
    absent = CliRunner().invoke(app, ["tenants", "import", str(tenants)])
    assert absent.exit_code == 2
    assert "tenants.acme.provider: 'exampletel' is not a registered provider" in absent.stderr
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    try:
        present = CliRunner().invoke(app, ["tenants", "import", str(tenants), "--json"])
    finally:
        sys.modules.pop("phone_actions_example", None)
    assert present.exit_code == 0, present.output
    assert orjson.loads(present.stdout)[0]["provider"] == "exampletel"
