"""The wallet API's OpenAPI document (`GET /openapi.json`, generated from the code)
against the live gateway: schemathesis (PyPI) sends what the document allows and what
it forbids, and checks every answer against it, so spec and behaviour can't drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import (
    ANTHROPIC_PROVIDER_KEY,
    OPENAI_MODEL,
    OPENAI_PROVIDER_KEY,
    Gateway,
    Mock,
    Process,
    clean_env,
    create_wallet,
    secrets_in,
)

# Every check but `positive_data_acceptance` (schema-valid data must be accepted): some
# rules can't be written in a schema (`expires_at` must be in the future, an amount at
# most $1,000,000, a cursor one this API issued), so valid-looking data is rightly refused.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


def test_the_document_describes_the_wallet_api(gateway: Gateway) -> None:
    r = gateway.http.get(f"{gateway.url}/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    operations = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert operations == {
        ("POST", "/v1/spend_keys"),
        ("GET", "/v1/spend_keys"),
        ("GET", "/v1/spend_keys/{id}"),
        ("PUT", "/v1/spend_keys/{id}"),
        ("PATCH", "/v1/spend_keys/{id}"),
        ("DELETE", "/v1/spend_keys/{id}"),
        ("POST", "/v1/spend_keys/{id}/rotate"),
        ("GET", "/v1/spend_keys/{id}/usage"),
        ("GET", "/v1/usage"),
        ("GET", "/v1/requests"),
        ("GET", "/v1/requests/export"),
        ("GET", "/v1/audit_log"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("DELETE", "/v1/webhooks/{id}"),
        ("GET", "/v1/webhooks/{id}/deliveries"),
        ("POST", "/v1/webhooks/{id}/test"),
        ("GET", "/v1/models"),
    }
    # The models a key may be limited to are the catalog's: the ones GET /v1/models lists.
    listed = {m["id"] for m in gateway._call("GET", "/v1/models")["data"]}
    create = doc["components"]["schemas"]["CreateSpendKeyBody"]
    allowed = set(create["properties"]["allowed_models"]["items"]["enum"])
    assert listed <= allowed and OPENAI_MODEL in allowed
    assert create["required"] == ["name"]
    assert create["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["wallet_key"]["scheme"] == "bearer"


def test_schemathesis_finds_no_difference_between_the_document_and_the_server(
    gateway: Gateway, mock: Mock, workdir: Path
) -> None:
    # A gateway of its own, so that its keys, webhooks and revocations stay out of the
    # other tests' way; schemathesis tries a wrong key on every operation, which the
    # sign-in guard would soon refuse from 127.0.0.1 at its default of 20 a minute.
    home = workdir / "openapi"
    home.mkdir()
    config = home / "spendgate.toml"
    config.write_text("[server]\nfailed_signins_allowed = 10000\n")
    database = f"sqlite://{home / 'spendgate.db'}"
    wallet = create_wallet(database, "openapi")
    env = clean_env(
        OPENAI_API_KEY=OPENAI_PROVIDER_KEY,
        OPENAI_BASE_URL=f"{mock.url}/v1",
        ANTHROPIC_API_KEY=ANTHROPIC_PROVIDER_KEY,
        ANTHROPIC_BASE_URL=mock.url,
    )
    server = Process("gateway", ["serve", "--listen", "127.0.0.1:0", "--database", database, "--config", str(config)], env, home, "spendgate listening on ")
    try:
        report = run_schemathesis(gateway, server.url, wallet["key"], home)
    finally:
        server.stop()
    log = server.stderr_path.read_text(errors="replace")
    assert not secrets_in(log, [OPENAI_PROVIDER_KEY, ANTHROPIC_PROVIDER_KEY]), log
    # It did test every operation, in every phase, and was not locked out on the way.
    assert "18 selected / 18 total" in report, report
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"]:
        assert f"✅ {phase}" in report, report
    assert "Rate limited" not in report, report


def run_schemathesis(gateway: Gateway, url: str, wallet_key: str, home: Path) -> str:
    auth = {"authorization": f"Bearer {wallet_key}"}
    # A key with a request on record, so that usage, the request log and the audit log
    # answer with real entries, not only empty pages.
    key = gateway.http.post(f"{url}/v1/spend_keys", headers=auth, json={"name": "openapi"}).json()
    gateway.secrets.append(key["key"])
    chat = gateway.http.post(
        f"{url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key['key']}"},
        json={"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 200, chat.text

    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {wallet_key}",
            *CHECKS,
            "--max-examples",
            "25",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        cwd=home,  # its cache of failures goes there, not into the repository
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis found a difference:\n{report}"
    return report
