"""Shared fixtures for the spendgate end-to-end suite that drives the official
`openai` and `anthropic` Python SDKs through a real gateway to spendgate's mock
provider.

One session starts two processes of the spendgate binary:

* ``spendgate mock-provider`` (deterministic OpenAI + Anthropic provider that
  records every request it receives), and
* ``spendgate serve`` against a fresh SQLite database in a temp dir, pointed at
  the mock through ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` and given provider
  keys that only this suite knows.

Environment:

* ``SPENDGATE_BIN``: the binary (default ``<repo>/target/debug/spendgate``).
* ``SPENDGATE_E2E_KEEP=1``: keep the temp dir (database, logs).

The SDKs read ``OPENAI_*`` / ``ANTHROPIC_*`` variables from the environment; this
suite never relies on them (base URLs and keys are passed explicitly) and removes
them from its own process so that an operator's shell cannot change what is sent.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

try:  # openai >= 3 and anthropic >= 2 are built on httpx2; older releases on httpx.
    import httpx2 as httpx  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

import anthropic
import openai

# The SDKs would otherwise pick these up (base URL, key, organisation, project...).
for _name in list(os.environ):
    if _name.startswith(("OPENAI_", "ANTHROPIC_")):
        del os.environ[_name]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
START_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 30.0

# Provider credentials the gateway is given; the mock records what it receives.
OPENAI_PROVIDER_KEY = "sk-provider-openai-e2e-" + uuid.uuid4().hex
ANTHROPIC_PROVIDER_KEY = "sk-ant-provider-e2e-" + uuid.uuid4().hex

OPENAI_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"

# USD per million tokens, as in crates/core/src/catalog/catalog.toml.
PRICES: dict[str, dict[str, Decimal]] = {
    OPENAI_MODEL: {
        "input": Decimal("0.15"),
        "output": Decimal("0.60"),
        "cached_input": Decimal("0.075"),
        "cache_write": Decimal("0"),
    },
    EMBEDDING_MODEL: {
        "input": Decimal("0.02"),
        "output": Decimal("0"),
        "cached_input": Decimal("0"),
        "cache_write": Decimal("0"),
    },
    ANTHROPIC_MODEL: {
        "input": Decimal("3.00"),
        "output": Decimal("15.00"),
        "cached_input": Decimal("0.30"),
        "cache_write": Decimal("3.75"),
    },
}

NANO = Decimal("0.000000001")


def expected_cost(model: str, *, input: int = 0, output: int = 0, cached_input: int = 0, cache_write: int = 0) -> Decimal:
    """Usage x catalog price, rounded up to the nano-dollar (the gateway never
    undercharges). ``input`` counts uncached input tokens only."""
    p = PRICES[model]
    total = (
        input * p["input"]
        + output * p["output"]
        + cached_input * p["cached_input"]
        + cache_write * p["cache_write"]
    ) / Decimal(1_000_000)
    return total.quantize(NANO, rounding=ROUND_CEILING)


# ---------------------------------------------------------------------------
# What the mock provider answers (mirrors crates/mock/src/text.rs).

MOCK_WORDS = [
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua",
]
MOCK_DEFAULT_OUTPUT_TOKENS = 16
MOCK_TOOL_OUTPUT_TOKENS = 12
MOCK_TOOL_ARGUMENTS = {"location": "Paris", "unit": "celsius"}
MOCK_TOOL_PREAMBLE = "Let me check. "


def mock_tokens(n: int) -> list[str]:
    return [MOCK_WORDS[i % len(MOCK_WORDS)] + " " for i in range(n)]


def mock_text(n: int = MOCK_DEFAULT_OUTPUT_TOKENS) -> str:
    return "".join(mock_tokens(n))


def mock_input_tokens(texts: list[str]) -> int:
    """The mock's input estimate for chat-style requests: ceil(chars / 4) plus one per
    message, at least 1. ``texts`` has one entry per message."""
    chars = sum(len(t) for t in texts)
    return max(1, math.ceil(chars / 4) + len(texts))


def mock_anthropic_input_tokens(messages: list[str], system: str = "") -> int:
    chars = len(system) + sum(len(t) for t in messages)
    return max(1, math.ceil(chars / 4) + len(messages))


def mock_embedding_tokens(texts: list[str]) -> int:
    return sum(max(1, math.ceil(len(t) / 4)) for t in texts)


def mock_embedding_vector(text: str, dimensions: int = 8) -> list[float]:
    """The mock's deterministic unit vector (FNV-1a then SplitMix64), in f32."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001B3) & mask
    state = h
    out = []
    f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]  # noqa: E731
    for _ in range(dimensions):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out.append(f32((z >> 40) / float(1 << 23) - 1.0))
    # The mock normalises in f32; a float64 norm is within f32 rounding of it.
    norm = math.sqrt(sum(x * x for x in out))
    return [x / norm for x in out]


def marker() -> str:
    """A unique string to put in a prompt and find its request in the mock's log."""
    return "e2e-" + uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------
# Processes.


def spendgate_bin() -> Path:
    bin_path = Path(os.environ.get("SPENDGATE_BIN") or REPO_ROOT / "target" / "debug" / "spendgate").resolve()
    if not bin_path.is_file():
        pytest.exit(
            f"spendgate binary not found at {bin_path}: build it with `cargo build -p spendgate` "
            "or point SPENDGATE_BIN at it",
            returncode=2,
        )
    return bin_path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a spendgate child: ours without provider variables, plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env.setdefault("SPENDGATE_LOG", "info")
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


class Process:
    """A spendgate child process whose stdout announces its address."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, prefix: str) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(spendgate_bin()), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.url = self._wait_for(prefix)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self._stdout.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for(self, prefix: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"did not print {prefix!r} within {START_TIMEOUT_S:.0f} s")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self.fail(f"exited with code {self.proc.returncode} before printing {prefix!r}")
            if line.startswith(prefix):
                return line[len(prefix):].strip().rstrip("/")

    def stderr_text(self) -> str:
        self._stderr.flush()
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def fail(self, why: str) -> None:
        stdout = "\n".join(self._stdout)
        self.stop()
        raise RuntimeError(
            f"{self.name} {why}\n--- stdout ---\n{stdout}\n--- stderr ---\n{self.stderr_text()}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="spendgate-e2e-py-"))
    yield path
    if os.environ.get("SPENDGATE_E2E_KEEP") == "1":
        print(f"\nspendgate e2e: kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# The mock provider.


@dataclass
class Mock:
    url: str
    process: Process
    http: Any

    def requests(self) -> list[dict[str, Any]]:
        """Every request the mock received since the last clear, in order."""
        r = self.http.get(f"{self.url}/_mock/requests")
        r.raise_for_status()
        return r.json()

    def clear(self) -> None:
        self.http.delete(f"{self.url}/_mock/requests").raise_for_status()

    def requests_with(self, text: str) -> list[dict[str, Any]]:
        """The recorded requests whose JSON body contains ``text``."""
        return [r for r in self.requests() if text in json.dumps(r["body"])]

    def one_request_with(self, text: str) -> dict[str, Any]:
        found = self.requests_with(text)
        assert len(found) == 1, f"expected exactly one upstream request containing {text!r}, got {len(found)}"
        return found[0]


def header_values(recorded: dict[str, Any], name: str) -> list[str]:
    return [v for n, v in recorded["headers"] if n.lower() == name.lower()]


@pytest.fixture(scope="session")
def mock(workdir: Path) -> Iterator[Mock]:
    proc = Process(
        "mock-provider",
        ["mock-provider", "--listen", "127.0.0.1:0"],
        clean_env(),
        workdir,
        "mock provider listening on ",
    )
    http = httpx.Client(timeout=10.0)
    try:
        yield Mock(url=proc.url, process=proc, http=http)
    finally:
        http.close()
        proc.stop()


# ---------------------------------------------------------------------------
# The gateway.


@dataclass
class Gateway:
    url: str
    process: Process
    wallet_key: str
    wallet_id: str
    http: Any
    secrets: list[str] = field(default_factory=list)

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # Wallet API -------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = self.http.request(
            method,
            f"{self.url}{path}",
            headers={"authorization": f"Bearer {self.wallet_key}"},
            json=body,
        )
        assert r.status_code == expect, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def create_key(self, **fields: Any) -> dict[str, Any]:
        """POST /v1/spend_keys. ``name`` defaults to a unique one; the secret is kept
        so that the suite can check it never reaches the provider."""
        body = {"name": f"e2e {uuid.uuid4().hex[:8]}", **fields}
        r = self.http.post(
            f"{self.url}/v1/spend_keys",
            headers={"authorization": f"Bearer {self.wallet_key}"},
            json=body,
        )
        assert r.status_code in (200, 201), f"POST /v1/spend_keys -> {r.status_code} {r.text}"
        key = r.json()
        assert key["key"].startswith("lava_sk_"), key
        self.secrets.append(key["key"])
        return key

    def get_key(self, key_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/spend_keys/{key_id}")

    def update_key(self, key_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PUT", f"/v1/spend_keys/{key_id}", fields)

    def rotate_key(self, key_id: str) -> dict[str, Any]:
        key = self._call("POST", f"/v1/spend_keys/{key_id}/rotate")
        self.secrets.append(key["key"])
        return key

    def revoke_key(self, key_id: str) -> Any:
        r = self.http.delete(
            f"{self.url}/v1/spend_keys/{key_id}",
            headers={"authorization": f"Bearer {self.wallet_key}"},
        )
        assert r.status_code in (200, 204), f"DELETE /v1/spend_keys/{key_id} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def spend(self, key_id: str) -> Decimal:
        return Decimal(self.get_key(key_id)["total_spend"])

    def wait_for_spend(self, key_id: str, expected: Decimal, timeout: float = 5.0) -> Decimal:
        """``total_spend`` once it equals ``expected`` (a stream settles when it ends,
        which may be a moment after the client read its last byte), or the last value
        seen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.spend(key_id)
            if got == expected or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


def create_wallet(database: str, name: str) -> dict[str, Any]:
    """`spendgate wallets create` on `database`: the wallet and its first API key."""
    created = subprocess.run(
        [str(spendgate_bin()), "wallets", "create", "--name", name, "--database", database, "--json"],
        capture_output=True,
        env=clean_env(SPENDGATE_LOG="warn"),
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if created.returncode != 0:
        raise RuntimeError(
            f"`spendgate wallets create` failed ({created.returncode})\n"
            f"--- stdout ---\n{created.stdout.decode(errors='replace')}\n"
            f"--- stderr ---\n{created.stderr.decode(errors='replace')}"
        )
    return json.loads(created.stdout)


@pytest.fixture(scope="session")
def gateway(workdir: Path, mock: Mock) -> Iterator[Gateway]:
    database = f"sqlite://{workdir / 'spendgate.db'}"
    wallet = create_wallet(database, "e2e-python")
    env = clean_env(
        OPENAI_API_KEY=OPENAI_PROVIDER_KEY,
        OPENAI_BASE_URL=f"{mock.url}/v1",
        ANTHROPIC_API_KEY=ANTHROPIC_PROVIDER_KEY,
        ANTHROPIC_BASE_URL=mock.url,
    )
    proc = Process(
        "gateway",
        ["serve", "--listen", "127.0.0.1:0", "--database", database],
        env,
        workdir,
        "spendgate listening on ",
    )
    http = httpx.Client(timeout=30.0)
    gw = Gateway(url=proc.url, process=proc, wallet_key=wallet["key"], wallet_id=wallet["wallet_id"], http=http)
    try:
        yield gw
    finally:
        http.close()
        proc.stop()
    # The gateway's whole log, after every test of the session, holds no secret.
    leaked = secrets_in(proc.stderr_path.read_text(errors="replace"), [OPENAI_PROVIDER_KEY, ANTHROPIC_PROVIDER_KEY])
    assert not leaked, f"secrets in the gateway's log {proc.stderr_path}: {leaked}"


def secrets_in(text: str, provider_keys: list[str]) -> list[str]:
    """Full spend or wallet keys (a preview has 4 characters and ``****``), dashboard
    session tokens, and the given provider keys, found in ``text``."""
    found = [f"{m.group(1)}{m.group(2)[:4]}..." for m in re.finditer(r"(lava_sk_|lava_wk_|sgs_)([A-Za-z0-9]{9,})", text)]
    found += [f"a provider key ({k[:6]}...)" for k in provider_keys if k in text]
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]):  # type: ignore[no-untyped-def]
    """On a failed test, attach the end of the gateway's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "gateway" in getattr(item, "funcargs", {}):
        gw: Gateway = item.funcargs["gateway"]
        tail = "\n".join(gw.process.stderr_text().splitlines()[-60:])
        report.sections.append(("spendgate serve stderr (last 60 lines)", tail))


# ---------------------------------------------------------------------------
# SDK clients with a request-counting httpx client.


@dataclass
class Sent:
    """What the SDK put on the wire through one httpx client."""

    requests: list[Any] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        self.requests.append(request)

    def on_response(self, response: Any) -> None:
        self.responses.append(response)

    @property
    def count(self) -> int:
        return len(self.requests)

    def reset(self) -> None:
        self.requests.clear()
        self.responses.clear()


def counting_http_client(sent: Sent) -> Any:
    return httpx.Client(
        timeout=httpx.Timeout(60.0, connect=10.0),
        event_hooks={"request": [sent.on_request], "response": [sent.on_response]},
    )


@pytest.fixture
def openai_client(gateway: Gateway) -> Iterator[Callable[..., tuple[openai.OpenAI, Sent]]]:
    """``openai_client(spend_key, **kwargs) -> (client, sent)``."""
    made: list[Any] = []

    def make(api_key: str, **kwargs: Any) -> tuple[openai.OpenAI, Sent]:
        sent = Sent()
        http = counting_http_client(sent)
        made.append(http)
        client = openai.OpenAI(api_key=api_key, base_url=gateway.openai_base_url, http_client=http, **kwargs)
        return client, sent

    yield make
    for http in made:
        http.close()


@pytest.fixture
def anthropic_client(gateway: Gateway) -> Iterator[Callable[..., tuple[anthropic.Anthropic, Sent]]]:
    """``anthropic_client(spend_key, **kwargs) -> (client, sent)``."""
    made: list[Any] = []

    def make(api_key: str, **kwargs: Any) -> tuple[anthropic.Anthropic, Sent]:
        sent = Sent()
        http = counting_http_client(sent)
        made.append(http)
        client = anthropic.Anthropic(api_key=api_key, base_url=gateway.anthropic_base_url, http_client=http, **kwargs)
        return client, sent

    yield make
    for http in made:
        http.close()
