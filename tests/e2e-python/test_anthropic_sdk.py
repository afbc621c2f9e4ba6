"""The official `anthropic` Python SDK, pointed at spendgate with a spend key
(request_shape "anthropic"), against the mock provider."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import anthropic
import pytest

from conftest import (
    ANTHROPIC_MODEL,
    ANTHROPIC_PROVIDER_KEY,
    MOCK_DEFAULT_OUTPUT_TOKENS,
    MOCK_TOOL_ARGUMENTS,
    MOCK_TOOL_OUTPUT_TOKENS,
    MOCK_TOOL_PREAMBLE,
    expected_cost,
    header_values,
    marker,
    mock_anthropic_input_tokens,
    mock_text,
)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}


def anthropic_key(gateway, **fields):
    return gateway.create_key(request_shape="anthropic", **fields)


def user(text):
    return [{"role": "user", "content": text}]


# 1. Non-streaming messages ----------------------------------------------------


def test_message_text_usage_and_cost(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"])
    prompt = f"Say something. {marker()}"

    message = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=1024, messages=user(prompt))

    assert sent.count == 1
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == ANTHROPIC_MODEL
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == mock_text(MOCK_DEFAULT_OUTPUT_TOKENS)
    assert message.stop_reason == "end_turn"
    input_tokens = mock_anthropic_input_tokens([prompt])
    assert message.usage.input_tokens == input_tokens
    assert message.usage.output_tokens == MOCK_DEFAULT_OUTPUT_TOKENS
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0

    after = gateway.get_key(key["spend_key_id"])
    cost = expected_cost(ANTHROPIC_MODEL, input=input_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert Decimal(after["total_spend"]) == cost
    assert Decimal(after["current_spend"]) == cost
    assert after["total_requests"] == 1
    assert after["current_requests"] == 1


def test_message_cache_read_and_write_priced_apart(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    system = "You are a terse assistant with a long cached system prompt."
    prompt = f"[[mock:cached:2000]] [[mock:cache_write:500]] [[mock:tokens:5]] {marker()}"

    message = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, system=system, messages=user(prompt))

    assert message.content[0].text == mock_text(5)
    input_tokens = mock_anthropic_input_tokens([prompt], system=system)
    # input_tokens EXCLUDES the cache reads and writes.
    assert message.usage.input_tokens == input_tokens
    assert message.usage.cache_read_input_tokens == 2000
    assert message.usage.cache_creation_input_tokens == 500
    assert message.usage.output_tokens == 5
    cost = expected_cost(ANTHROPIC_MODEL, input=input_tokens, cached_input=2000, cache_write=500, output=5)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_max_tokens_caps_the_answer(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"[[mock:tokens:50]] {marker()}"
    message = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=6, messages=user(prompt))
    assert message.content[0].text == mock_text(6)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 6
    cost = expected_cost(ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt]), output=6)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_success_headers_carry_cost_and_headroom(gateway, anthropic_client):
    key = anthropic_key(
        gateway,
        request_limit={"count": 3, "cycle": "weekly"},
        spend_limit={"amount": "5.00", "cycle": "monthly"},
    )
    client, _ = anthropic_client(key["key"])
    prompt = f"headers {marker()}"

    raw = client.messages.with_raw_response.create(model=ANTHROPIC_MODEL, max_tokens=100, messages=user(prompt))
    message = raw.parse()

    assert message.content[0].text == mock_text()
    cost = expected_cost(ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt]), output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert Decimal(raw.headers["x-spendgate-cost"]) == cost
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    remaining_usd = Decimal(raw.headers["x-ratelimit-remaining-usd"])
    assert Decimal("0") <= remaining_usd < Decimal("5.00")
    assert gateway.spend(key["spend_key_id"]) == cost


# 2. Streaming ---------------------------------------------------------------


def test_stream_helper_text_and_final_message(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"])
    prompt = f"Stream please [[mock:slow:40]] {marker()}"

    deltas, arrivals = [], []
    with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=1024, messages=user(prompt)) as stream:
        for text in stream.text_stream:
            deltas.append(text)
            arrivals.append(time.monotonic())
        final = stream.get_final_message()

    assert sent.count == 1
    assert len(deltas) == MOCK_DEFAULT_OUTPUT_TOKENS > 1
    assert "".join(deltas) == mock_text()
    assert arrivals[-1] - arrivals[0] >= 0.3, f"deltas arrived within {arrivals[-1] - arrivals[0]:.3f} s"
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == mock_text()
    assert final.stop_reason == "end_turn"
    input_tokens = mock_anthropic_input_tokens([prompt])
    assert final.usage.input_tokens == input_tokens
    assert final.usage.output_tokens == MOCK_DEFAULT_OUTPUT_TOKENS

    cost = expected_cost(ANTHROPIC_MODEL, input=input_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 1


def test_raw_stream_events_and_cached_usage(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"[[mock:tokens:11]] [[mock:cached:300]] [[mock:cache_write:40]] {marker()}"

    events = list(client.messages.create(model=ANTHROPIC_MODEL, max_tokens=512, messages=user(prompt), stream=True))

    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    assert types.count("content_block_delta") == 11
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == mock_text(11)
    start = events[0].message
    input_tokens = mock_anthropic_input_tokens([prompt])
    assert start.usage.input_tokens == input_tokens
    assert start.usage.cache_read_input_tokens == 300
    assert start.usage.cache_creation_input_tokens == 40
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 11
    cost = expected_cost(ANTHROPIC_MODEL, input=input_tokens, cached_input=300, cache_write=40, output=11)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_stream_text_equals_non_streamed_text(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"[[mock:tokens:23]] same text either way {marker()}"
    whole = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=100, messages=user(prompt))
    with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=100, messages=user(prompt)) as stream:
        streamed = "".join(stream.text_stream)
    assert whole.content[0].text == mock_text(23)
    assert streamed == whole.content[0].text


# 3. Tool calls --------------------------------------------------------------


def test_tool_use_non_streamed(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"What is the weather in Paris? [[mock:tool]] {marker()}"

    message = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=1024, messages=user(prompt), tools=[WEATHER_TOOL])

    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == MOCK_TOOL_PREAMBLE
    tool_use = message.content[1]
    assert tool_use.name == "get_weather"
    assert tool_use.id.startswith("toolu_")
    assert tool_use.input == MOCK_TOOL_ARGUMENTS
    assert message.usage.output_tokens == MOCK_TOOL_OUTPUT_TOKENS
    cost = expected_cost(ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt]), output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_tool_use_streamed_accumulates(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"What is the weather in Paris? [[mock:tool]] {marker()}"

    with client.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=1024, messages=user(prompt), tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    json_deltas = [e.partial_json for e in events if e.type == "input_json"]
    assert len([d for d in json_deltas if d]) > 1
    assert json.loads("".join(json_deltas)) == MOCK_TOOL_ARGUMENTS
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == MOCK_TOOL_PREAMBLE
    tool_use = final.content[1]
    assert tool_use.name == "get_weather"
    assert tool_use.input == MOCK_TOOL_ARGUMENTS
    assert final.usage.output_tokens == MOCK_TOOL_OUTPUT_TOKENS
    cost = expected_cost(ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt]), output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


# 6. count_tokens ---------------------------------------------------------------


def test_count_tokens_works_and_is_not_billed(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"])
    tag = marker()
    system = "Count me too."
    messages = [
        {"role": "user", "content": f"How many tokens is this? {tag}"},
        {"role": "assistant", "content": "Let me see."},
        {"role": "user", "content": "Well?"},
    ]

    counted = client.messages.count_tokens(model=ANTHROPIC_MODEL, system=system, messages=messages)

    assert sent.count == 1
    assert counted.input_tokens == mock_anthropic_input_tokens([m["content"] for m in messages], system=system)
    upstream = mock.one_request_with(tag)
    assert upstream["path"] == "/v1/messages/count_tokens"
    assert header_values(upstream, "x-api-key") == [ANTHROPIC_PROVIDER_KEY]
    after = gateway.get_key(key["spend_key_id"])
    assert after["total_requests"] == 0
    assert after["current_requests"] == 0
    assert Decimal(after["total_spend"]) == 0


def test_count_tokens_needs_a_valid_key(gateway, anthropic_client):
    key = anthropic_key(gateway, status="paused")
    client, _ = anthropic_client(key["key"])
    with pytest.raises(anthropic.AuthenticationError) as err:
        client.messages.count_tokens(model=ANTHROPIC_MODEL, messages=user("hi"))
    assert "key is paused" in err.value.message


# 7. Credentials ---------------------------------------------------------------


def test_provider_key_sent_upstream_and_spend_key_never(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"])
    tag = marker()
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=user(f"credentials {tag}"))

    # Current SDKs send the key as a bearer token; the gateway accepts it...
    sdk_request = sent.requests[0]
    presented = [sdk_request.headers.get("authorization"), sdk_request.headers.get("x-api-key")]
    assert f"Bearer {key['key']}" in presented or key["key"] in presented
    # ... and sends the operator's key upstream, with the client's API version.
    upstream = mock.one_request_with(tag)
    assert upstream["path"] == "/v1/messages"
    assert header_values(upstream, "x-api-key") == [ANTHROPIC_PROVIDER_KEY]
    assert header_values(upstream, "authorization") == []
    assert header_values(upstream, "anthropic-version") == [sdk_request.headers["anthropic-version"]]
    recorded = mock.requests()
    assert recorded
    for request in recorded:
        blob = json.dumps(request)
        for secret in gateway.secrets:
            assert secret not in blob, f"a spend key reached the provider in {request['method']} {request['path']}"
        for name, value in request["headers"]:
            assert "lava_sk_" not in value, (name, request["path"])
            assert "lava_wk_" not in value, (name, request["path"])


def test_x_api_key_header_is_accepted(gateway, mock):
    """Claude Code sends the key as `x-api-key` with `anthropic-version: 2023-06-01`."""
    key = anthropic_key(gateway)
    tag = marker()
    r = gateway.http.post(
        f"{gateway.url}/v1/messages?beta=true",
        headers={"x-api-key": key["key"], "anthropic-version": "2023-06-01"},
        json={"model": ANTHROPIC_MODEL, "max_tokens": 32, "messages": user(tag)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == mock_text()
    upstream = mock.one_request_with(tag)
    assert upstream["query"] == "beta=true"
    assert header_values(upstream, "x-api-key") == [ANTHROPIC_PROVIDER_KEY]
    assert header_values(upstream, "anthropic-version") == ["2023-06-01"]


# 8. Troubleshooting ------------------------------------------------------------


def test_key_preview_is_rejected_with_a_hint(gateway, anthropic_client):
    key = anthropic_key(gateway)
    assert key["key_preview"].endswith("****")
    client, sent = anthropic_client(key["key_preview"])
    with pytest.raises(anthropic.AuthenticationError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("hi"))
    assert err.value.status_code == 401
    assert "key preview" in err.value.message
    assert sent.count == 1


def test_paused_key(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    gateway.update_key(key["spend_key_id"], status="paused")
    with pytest.raises(anthropic.AuthenticationError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("hi"))
    assert "key is paused" in err.value.message


def test_revoked_key(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    gateway.revoke_key(key["spend_key_id"])
    with pytest.raises(anthropic.AuthenticationError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("hi"))
    assert "key was revoked" in err.value.message


def test_expired_key(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("before expiry"))
    expires = datetime.now(timezone.utc) + timedelta(seconds=2)
    gateway.update_key(key["spend_key_id"], expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.3)
    with pytest.raises(anthropic.AuthenticationError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("after expiry"))
    assert "key expired at" in err.value.message


def test_model_not_allowed(gateway, anthropic_client):
    key = anthropic_key(gateway, allowed_models=[ANTHROPIC_MODEL])
    client, sent = anthropic_client(key["key"])
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        client.messages.create(model="claude-opus-4-20250514", max_tokens=16, messages=user("hi"))
    assert err.value.status_code == 403
    assert "Model not allowed" in err.value.message
    assert ANTHROPIC_MODEL in err.value.message
    assert sent.count == 1


def test_request_limit_reached_is_not_retried(gateway, mock, anthropic_client):
    key = anthropic_key(gateway, request_limit={"count": 2, "cycle": "monthly"})
    client, sent = anthropic_client(key["key"])
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("first"))
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("second"))
    sent.reset()
    tag = marker()
    with pytest.raises(anthropic.RateLimitError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user(f"third {tag}"))
    assert err.value.status_code == 429
    assert "request limit reached" in err.value.message
    assert err.value.response.headers.get("x-should-retry") == "false"
    assert sent.count == 1, f"the SDK sent {sent.count} requests (it retried a request cap)"
    assert mock.requests_with(tag) == []
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 2


def test_spend_limit_reached_is_not_retried(gateway, mock, anthropic_client):
    key = anthropic_key(gateway, spend_limit={"amount": "10.00", "cycle": "total"})
    client, sent = anthropic_client(key["key"])
    prompt = "spend it"
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=user(prompt))
    spent = gateway.spend(key["spend_key_id"])
    assert spent == expected_cost(
        ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt]), output=MOCK_DEFAULT_OUTPUT_TOKENS
    )
    gateway.update_key(key["spend_key_id"], spend_limit={"amount": str(spent), "cycle": "total"})
    sent.reset()
    tag = marker()
    with pytest.raises(anthropic.RateLimitError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=user(f"more {tag}"))
    assert err.value.status_code == 429
    assert "spend limit reached" in err.value.message
    assert err.value.response.headers.get("x-should-retry") == "false"
    assert sent.count == 1, f"the SDK sent {sent.count} requests (it retried a spend cap)"
    assert mock.requests_with(tag) == []
    assert gateway.spend(key["spend_key_id"]) == spent


def test_wrong_api_format(gateway, mock, anthropic_client):
    key = gateway.create_key(request_shape="openai")
    client, sent = anthropic_client(key["key"])
    tag = marker()
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user(tag))
    assert err.value.status_code == 400
    assert "wrong API format" in err.value.message
    assert sent.count == 1
    assert mock.requests_with(tag) == []


def test_rate_limit_is_retried_after_retry_after(gateway, anthropic_client):
    key = anthropic_key(gateway, rate_limit={"rpm": 60, "burst": 1})
    client, sent = anthropic_client(key["key"])
    t0 = time.monotonic()
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("first"))
    sent.reset()

    started = time.monotonic()
    message = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("second"))
    elapsed = time.monotonic() - started

    assert message.content[0].text == mock_text()
    assert sent.count == 2, f"expected one 429 then one retry, the SDK sent {sent.count}"
    first, second = sent.responses
    assert first.status_code == 429
    assert int(first.headers["retry-after"]) >= 1
    assert 0 < int(first.headers["retry-after-ms"]) <= 1000
    assert first.headers.get("x-should-retry") != "false"
    assert second.status_code == 200
    # The SDK honoured the server's wait...
    assert elapsed >= int(first.headers["retry-after-ms"]) / 1000 - 0.005, elapsed
    # ... which was about a second (one request per second, burst 1), less the time
    # the first call took.
    first_call = started - t0
    assert elapsed >= min(0.9, 1.0 - first_call - 0.01), f"the retry came after {elapsed:.3f} s"
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 2


# Beyond the list: thinking blocks, base URL mistakes, provider errors, broken streams


def test_thinking_block_round_trips_and_is_billed(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"Think first [[mock:thinking]] [[mock:tokens:4]] {marker()}"

    with client.messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user(prompt),
    ) as stream:
        final = stream.get_final_message()

    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "The user wants some text, so write it. "
    assert final.content[0].signature == "bW9jay10aGlua2luZy1zaWduYXR1cmUtdjE="
    assert final.content[1].text == mock_text(4)
    assert final.usage.output_tokens == 8 + 4
    cost = expected_cost(ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt]), output=12)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_base_url_with_v1_gets_a_hint(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    client.base_url = f"{gateway.url}/v1"  # the mistake: the SDK appends /v1/messages
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("hi"))
    assert err.value.status_code == 404
    assert "without /v1" in err.value.message or "/v1 twice" in err.value.message
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 0


def test_provider_error_is_passed_through_and_costs_nothing(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"], max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as err:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=16, messages=user("[[mock:error:529]]"))
    assert err.value.status_code == 529
    assert "Overloaded" in err.value.message
    assert sent.count == 1
    assert gateway.spend(key["spend_key_id"]) == 0


def test_stream_broken_upstream_is_charged(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"[[mock:tokens:30]] [[mock:break:5]] {marker()}"
    got = []
    with pytest.raises(Exception):  # noqa: B017 - how the break surfaces is the transport's business
        with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=100, messages=user(prompt)) as stream:
            for text in stream.text_stream:
                got.append(text)
    assert "".join(got) == mock_text(5)
    deadline = time.monotonic() + 10
    while gateway.spend(key["spend_key_id"]) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    spent = gateway.spend(key["spend_key_id"])
    # message_start carried the input tokens: at least those are charged.
    assert spent >= expected_cost(ANTHROPIC_MODEL, input=mock_anthropic_input_tokens([prompt])), spent


def test_models_list_shows_only_allowed_models(gateway, anthropic_client):
    key = anthropic_key(gateway, allowed_models=[ANTHROPIC_MODEL])
    client, _ = anthropic_client(key["key"])
    assert [m.id for m in client.models.list()] == [ANTHROPIC_MODEL]
