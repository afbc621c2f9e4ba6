"""The official `openai` Python SDK, pointed at spendgate with a spend key
(request_shape "openai"), against the mock provider."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import openai
import pytest

from conftest import (
    EMBEDDING_MODEL,
    MOCK_DEFAULT_OUTPUT_TOKENS,
    MOCK_TOOL_ARGUMENTS,
    MOCK_TOOL_OUTPUT_TOKENS,
    OPENAI_MODEL,
    OPENAI_PROVIDER_KEY,
    expected_cost,
    header_values,
    marker,
    mock_embedding_tokens,
    mock_embedding_vector,
    mock_input_tokens,
    mock_text,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}


def openai_key(gateway, **fields):
    return gateway.create_key(request_shape="openai", **fields)


def user(text):
    return [{"role": "user", "content": text}]


# 1. Non-streaming chat -------------------------------------------------------


def test_chat_completion_text_usage_and_cost(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    prompt = f"Say something. {marker()}"

    completion = client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt))

    assert sent.count == 1
    assert completion.object == "chat.completion"
    assert completion.model == OPENAI_MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == mock_text(MOCK_DEFAULT_OUTPUT_TOKENS)
    assert choice.finish_reason == "stop"
    prompt_tokens = mock_input_tokens([prompt])
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == MOCK_DEFAULT_OUTPUT_TOKENS
    assert completion.usage.total_tokens == prompt_tokens + MOCK_DEFAULT_OUTPUT_TOKENS
    assert completion.usage.prompt_tokens_details.cached_tokens == 0

    after = gateway.get_key(key["spend_key_id"])
    cost = expected_cost(OPENAI_MODEL, input=prompt_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert Decimal(after["total_spend"]) == cost
    assert Decimal(after["current_spend"]) == cost
    assert after["total_requests"] == 1
    assert after["current_requests"] == 1


def test_chat_completion_cached_tokens_priced_apart(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"Long shared prefix [[mock:cached:1200]] [[mock:tokens:7]] {marker()}"

    completion = client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt))

    assert completion.choices[0].message.content == mock_text(7)
    uncached = mock_input_tokens([prompt])
    # prompt_tokens INCLUDES the cached tokens.
    assert completion.usage.prompt_tokens == uncached + 1200
    assert completion.usage.prompt_tokens_details.cached_tokens == 1200
    assert completion.usage.completion_tokens == 7
    cost = expected_cost(OPENAI_MODEL, input=uncached, cached_input=1200, output=7)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_success_headers_carry_cost_and_headroom(gateway, openai_client):
    key = openai_key(
        gateway,
        request_limit={"count": 10, "cycle": "daily"},
        spend_limit={"amount": "1.00", "cycle": "daily"},
    )
    client, _ = openai_client(key["key"])
    prompt = f"headers {marker()}"

    raw = client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=user(prompt))
    completion = raw.parse()

    assert completion.choices[0].message.content == mock_text()
    cost = expected_cost(OPENAI_MODEL, input=mock_input_tokens([prompt]), output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert Decimal(raw.headers["x-spendgate-cost"]) == cost
    assert raw.headers["x-ratelimit-remaining-requests"] == "9"
    remaining_usd = Decimal(raw.headers["x-ratelimit-remaining-usd"])
    assert Decimal("0") <= remaining_usd < Decimal("1.00")
    assert gateway.spend(key["spend_key_id"]) == cost


# 2. Streaming ---------------------------------------------------------------


def test_stream_with_include_usage(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    prompt = f"Stream please [[mock:slow:40]] {marker()}"

    stream = client.chat.completions.create(
        model=OPENAI_MODEL,
        messages=user(prompt),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks, deltas, arrivals = [], [], []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
            arrivals.append(time.monotonic())

    assert sent.count == 1
    assert len(deltas) == MOCK_DEFAULT_OUTPUT_TOKENS > 1
    assert "".join(deltas) == mock_text()
    # 16 deltas 40 ms apart upstream: they must reach the client as they come, not
    # buffered into one piece at the end.
    assert arrivals[-1] - arrivals[0] >= 0.3, f"deltas arrived within {arrivals[-1] - arrivals[0]:.3f} s"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    prompt_tokens = mock_input_tokens([prompt])
    assert last.usage is not None
    assert last.usage.prompt_tokens == prompt_tokens
    assert last.usage.completion_tokens == MOCK_DEFAULT_OUTPUT_TOKENS
    assert last.usage.total_tokens == prompt_tokens + MOCK_DEFAULT_OUTPUT_TOKENS
    assert sum(1 for c in chunks if not c.choices) == 1

    cost = expected_cost(OPENAI_MODEL, input=prompt_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 1


def test_stream_without_include_usage_still_charged(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    prompt = f"Stream, no usage asked [[mock:tokens:9]] [[mock:cached:64]] {tag}"

    chunks = list(client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt), stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_text(9)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 9
    # The client did not ask for usage: no usage chunk, no usage anywhere.
    assert [c for c in chunks if not c.choices] == []
    assert all(c.usage is None for c in chunks)

    # The gateway asked upstream for it...
    upstream = mock.one_request_with(tag)
    assert upstream["path"] == "/v1/chat/completions"
    assert upstream["body"]["stream"] is True
    assert upstream["body"]["stream_options"]["include_usage"] is True
    # ... and charged what the mock reported.
    uncached = mock_input_tokens([prompt])
    cost = expected_cost(OPENAI_MODEL, input=uncached, cached_input=64, output=9)
    assert cost > 0
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_stream_text_equals_non_streamed_text(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"[[mock:tokens:23]] same text either way {marker()}"
    whole = client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt))
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt), stream=True)
        if c.choices
    )
    assert whole.choices[0].message.content == mock_text(23)
    assert streamed == whole.choices[0].message.content


# 3. Tool calls --------------------------------------------------------------


def test_tool_call_non_streamed(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"What is the weather in Paris? [[mock:tool]] {marker()}"

    completion = client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt), tools=[WEATHER_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == MOCK_TOOL_ARGUMENTS
    assert completion.usage.completion_tokens == MOCK_TOOL_OUTPUT_TOKENS
    cost = expected_cost(OPENAI_MODEL, input=mock_input_tokens([prompt]), output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_tool_call_streamed_accumulates(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"What is the weather in Paris? [[mock:tool]] {marker()}"

    with client.chat.completions.stream(model=OPENAI_MODEL, messages=user(prompt), tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    fragments = [e.arguments_delta for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert len(fragments) > 1
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert len(done) == 1
    assert done[0].name == "get_weather"
    assert json.loads(done[0].arguments) == MOCK_TOOL_ARGUMENTS
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert len(calls) == 1
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == MOCK_TOOL_ARGUMENTS
    cost = expected_cost(OPENAI_MODEL, input=mock_input_tokens([prompt]), output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


# 4. Embeddings --------------------------------------------------------------


def test_embeddings_base64_decoded_and_billed(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    texts = ["The food was delicious and the waiter was friendly.", tag]

    result = client.embeddings.create(model=EMBEDDING_MODEL, input=texts)

    upstream = mock.one_request_with(tag)
    assert upstream["path"] == "/v1/embeddings"
    assert upstream["body"]["encoding_format"] == "base64"  # the SDK's default
    assert [d.index for d in result.data] == [0, 1]
    for text, item in zip(texts, result.data):
        assert isinstance(item.embedding, list)
        assert len(item.embedding) == 8
        assert all(isinstance(x, float) for x in item.embedding)
        assert item.embedding == pytest.approx(mock_embedding_vector(text), abs=1e-6)
        assert sum(x * x for x in item.embedding) == pytest.approx(1.0, abs=1e-5)
    tokens = mock_embedding_tokens(texts)
    assert result.usage.prompt_tokens == tokens > 0
    assert result.usage.total_tokens == tokens
    cost = expected_cost(EMBEDDING_MODEL, input=tokens)
    assert cost > 0
    assert gateway.spend(key["spend_key_id"]) == cost
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 1


def test_embeddings_float_encoding(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    text = f"float please {marker()}"
    result = client.embeddings.create(model=EMBEDDING_MODEL, input=text, encoding_format="float", dimensions=4)
    assert result.data[0].embedding == pytest.approx(mock_embedding_vector(text, 4), abs=1e-6)
    assert result.usage.prompt_tokens == mock_embedding_tokens([text])


# 5. Models ------------------------------------------------------------------


def test_models_list_shows_only_allowed_models(gateway, openai_client):
    key = openai_key(gateway, allowed_models=[OPENAI_MODEL, EMBEDDING_MODEL])
    client, _ = openai_client(key["key"])
    ids = [m.id for m in client.models.list()]
    assert sorted(ids) == sorted([OPENAI_MODEL, EMBEDDING_MODEL])

    by_provider = openai_key(gateway, allowed_providers=["openai"])
    client, _ = openai_client(by_provider["key"])
    models = list(client.models.list())
    ids = {m.id for m in models}
    assert OPENAI_MODEL in ids and EMBEDDING_MODEL in ids
    assert not any(i.startswith("claude") for i in ids), sorted(ids)
    assert all(m.owned_by == "openai" for m in models), sorted((m.id, m.owned_by) for m in models)


# 7. Credentials ---------------------------------------------------------------


def test_provider_key_sent_upstream_and_spend_key_never(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    tag = marker()
    client.chat.completions.create(model=OPENAI_MODEL, messages=user(f"credentials {tag}"))

    # The SDK sent the spend key to the gateway...
    assert sent.requests[0].headers["authorization"] == f"Bearer {key['key']}"
    # ... and the gateway sent the operator's key to the provider.
    upstream = mock.one_request_with(tag)
    assert header_values(upstream, "authorization") == [f"Bearer {OPENAI_PROVIDER_KEY}"]
    assert header_values(upstream, "x-api-key") == []
    # No spend key created in this session appears in any request the provider got.
    recorded = mock.requests()
    assert recorded
    for request in recorded:
        blob = json.dumps(request)
        for secret in gateway.secrets:
            assert secret not in blob, f"a spend key reached the provider in {request['method']} {request['path']}"
        for name, value in request["headers"]:
            assert "lava_sk_" not in value, (name, request["path"])
            assert "lava_wk_" not in value, (name, request["path"])


# 8. Troubleshooting ------------------------------------------------------------


def test_key_preview_is_rejected_with_a_hint(gateway, openai_client):
    key = openai_key(gateway)
    assert key["key_preview"].endswith("****")
    client, sent = openai_client(key["key_preview"])
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    assert err.value.status_code == 401
    assert "key preview" in err.value.message
    assert sent.count == 1


def test_paused_key(gateway, openai_client):
    key = openai_key(gateway, status="paused")
    client, _ = openai_client(key["key"])
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    assert "key is paused" in err.value.message
    # Resume: works on the very next request.
    gateway.update_key(key["spend_key_id"], status="active")
    assert client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi")).choices[0].message.content == mock_text()


def test_revoked_key(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    gateway.revoke_key(key["spend_key_id"])
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    assert "key was revoked" in err.value.message


def test_rotated_key(gateway, openai_client):
    key = openai_key(gateway)
    old, _ = openai_client(key["key"])
    old.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    rotated = gateway.rotate_key(key["spend_key_id"])
    with pytest.raises(openai.AuthenticationError):
        old.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    new, _ = openai_client(rotated["key"])
    assert new.chat.completions.create(model=OPENAI_MODEL, messages=user("hi")).choices[0].message.content == mock_text()
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 2


def test_expired_key(gateway, openai_client):
    expires = datetime.now(timezone.utc) + timedelta(seconds=3)
    key = openai_key(gateway, expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
    client, _ = openai_client(key["key"])
    client.chat.completions.create(model=OPENAI_MODEL, messages=user("before expiry"))
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.3)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("after expiry"))
    assert "key expired at" in err.value.message


def test_model_not_allowed(gateway, openai_client):
    key = openai_key(gateway, allowed_models=[OPENAI_MODEL])
    client, sent = openai_client(key["key"])
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert err.value.status_code == 403
    assert "Model not allowed" in err.value.message
    assert OPENAI_MODEL in err.value.message
    assert sent.count == 1


def test_request_limit_reached_is_not_retried(gateway, mock, openai_client):
    key = openai_key(gateway, request_limit={"count": 1, "cycle": "daily"})
    client, sent = openai_client(key["key"])
    client.chat.completions.create(model=OPENAI_MODEL, messages=user("first"))
    sent.reset()
    tag = marker()
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user(f"second {tag}"))
    assert err.value.status_code == 429
    assert "request limit reached" in err.value.message
    assert err.value.response.headers.get("x-should-retry") == "false"
    assert sent.count == 1, f"the SDK sent {sent.count} requests (it retried a request cap)"
    assert mock.requests_with(tag) == []
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 1


def test_spend_limit_reached_is_not_retried(gateway, mock, openai_client):
    key = openai_key(gateway, spend_limit={"amount": "1.00", "cycle": "daily"})
    client, sent = openai_client(key["key"])
    prompt = "spend it"
    client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt))
    spent = gateway.spend(key["spend_key_id"])
    assert spent == expected_cost(OPENAI_MODEL, input=mock_input_tokens([prompt]), output=MOCK_DEFAULT_OUTPUT_TOKENS)
    # The owner lowers the limit to what was spent: nothing is left.
    gateway.update_key(key["spend_key_id"], spend_limit={"amount": str(spent), "cycle": "daily"})
    sent.reset()
    tag = marker()
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user(f"more {tag}"))
    assert err.value.status_code == 429
    assert "spend limit reached" in err.value.message
    assert err.value.response.headers.get("x-should-retry") == "false"
    assert sent.count == 1, f"the SDK sent {sent.count} requests (it retried a spend cap)"
    assert mock.requests_with(tag) == []
    assert gateway.spend(key["spend_key_id"]) == spent


def test_wrong_api_format(gateway, mock, openai_client):
    key = gateway.create_key(request_shape="anthropic")
    client, sent = openai_client(key["key"])
    tag = marker()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user(tag))
    assert err.value.status_code == 400
    assert "wrong API format" in err.value.message
    assert sent.count == 1
    assert mock.requests_with(tag) == []


def test_rate_limit_is_retried_after_retry_after(gateway, openai_client):
    key = openai_key(gateway, rate_limit={"rpm": 60, "burst": 1})
    client, sent = openai_client(key["key"])
    t0 = time.monotonic()
    client.chat.completions.create(model=OPENAI_MODEL, messages=user("first"))
    sent.reset()

    started = time.monotonic()
    completion = client.chat.completions.create(model=OPENAI_MODEL, messages=user("second"))
    elapsed = time.monotonic() - started

    assert completion.choices[0].message.content == mock_text()
    assert sent.count == 2, f"expected one 429 then one retry, the SDK sent {sent.count}"
    first, second = sent.responses
    assert first.status_code == 429
    assert "retry-after" in first.headers
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


# Beyond the list: the Responses API, base URL mistakes, provider errors, streams
# that end early -------------------------------------------------------------------


def test_responses_api_non_streamed(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"Responses API [[mock:cached:100]] {marker()}"

    response = client.responses.create(model=OPENAI_MODEL, input=prompt)

    assert response.status == "completed"
    assert response.output_text == mock_text()
    uncached = mock_input_tokens([prompt])
    assert response.usage.input_tokens == uncached + 100
    assert response.usage.input_tokens_details.cached_tokens == 100
    assert response.usage.output_tokens == MOCK_DEFAULT_OUTPUT_TOKENS
    cost = expected_cost(OPENAI_MODEL, input=uncached, cached_input=100, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_responses_api_streamed(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"Responses stream [[mock:tokens:12]] {marker()}"

    events = list(client.responses.create(model=OPENAI_MODEL, input=prompt, stream=True))

    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 12
    assert "".join(deltas) == mock_text(12)
    assert events[-1].type == "response.completed"
    usage = events[-1].response.usage
    prompt_tokens = mock_input_tokens([prompt])
    assert usage.input_tokens == prompt_tokens
    assert usage.output_tokens == 12
    cost = expected_cost(OPENAI_MODEL, input=prompt_tokens, output=12)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_base_url_without_v1_gets_a_hint(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    client.base_url = gateway.url  # the mistake: no /v1
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("hi"))
    assert err.value.status_code == 404
    assert "/v1" in err.value.message
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 0


def test_unknown_model(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    tag = marker()
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-no-such-model", messages=user(tag))
    assert err.value.code == "model_not_found"
    assert "gpt-no-such-model" in err.value.message
    assert sent.count == 1
    assert mock.requests_with(tag) == []


def test_provider_error_is_passed_through_and_costs_nothing(gateway, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("[[mock:error:400]]"))
    assert "requested with [[mock:error:400]]" in err.value.message
    assert sent.count == 1
    assert gateway.spend(key["spend_key_id"]) == 0

    client, sent = openai_client(key["key"], max_retries=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=OPENAI_MODEL, messages=user("[[mock:error:500]]"))
    assert sent.count == 2  # a provider 5xx stays retryable
    assert gateway.spend(key["spend_key_id"]) == 0


def test_stream_dropped_by_the_client_is_charged(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"[[mock:tokens:200]] [[mock:slow:25]] {marker()}"
    stream = client.chat.completions.create(model=OPENAI_MODEL, messages=user(prompt), stream=True)
    got = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got.append(chunk.choices[0].delta.content)
            if len(got) == 3:
                break
    stream.close()
    assert "".join(got) == mock_text(3)
    deadline = time.monotonic() + 10
    while gateway.spend(key["spend_key_id"]) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    spent = gateway.spend(key["spend_key_id"])
    assert spent > 0, "a stream the client dropped was not charged"
    # Never more than the whole answer would have cost.
    assert spent <= expected_cost(OPENAI_MODEL, input=mock_input_tokens([prompt]) * 4 + 64, output=200)


def test_stream_broken_upstream_is_charged(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"[[mock:tokens:30]] [[mock:break:5]] {marker()}"
    got = []
    with pytest.raises(Exception):  # noqa: B017 - how the break surfaces is the transport's business
        for chunk in client.chat.completions.create(
            model=OPENAI_MODEL, messages=user(prompt), stream=True, stream_options={"include_usage": True}
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert "".join(got) == mock_text(5)
    deadline = time.monotonic() + 10
    while gateway.spend(key["spend_key_id"]) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.spend(key["spend_key_id"]) > 0, "a broken stream was not charged"
