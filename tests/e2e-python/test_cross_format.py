"""Cross-format translation through the official SDKs and LangChain: an OpenAI-format
spend key on a Claude model (`/v1/chat/completions` -> the provider's `/v1/messages`)
and an Anthropic-format spend key on a GPT model (`/v1/messages` -> the provider's
`/v1/chat/completions`). The client sees only its own format; the mock's recorded
requests show that the provider got only its own; costs use the provider's native
usage and the catalog's prices (README "Cross-format", shared/spec/wire-formats.md
"Translating between the two formats")."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal

import anthropic
import openai
import pytest

from conftest import (
    ANTHROPIC_MODEL,
    ANTHROPIC_PROVIDER_KEY,
    MOCK_DEFAULT_OUTPUT_TOKENS,
    MOCK_TOOL_ARGUMENTS,
    MOCK_TOOL_OUTPUT_TOKENS,
    MOCK_TOOL_PREAMBLE,
    OPENAI_MODEL,
    OPENAI_PROVIDER_KEY,
    expected_cost,
    header_values,
    marker,
    mock_anthropic_input_tokens,
    mock_input_tokens,
    mock_text,
)

CLAUDE = ANTHROPIC_MODEL  # claude-sonnet-4-20250514: $3 in, $15 out, $0.30 cache read, $3.75 cache write
GPT = OPENAI_MODEL  # gpt-4o-mini: $0.15 in, $0.60 out, $0.075 cached
CLAUDE_MAX_OUTPUT = 64000  # the catalog's max_output_tokens for CLAUDE

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
WEATHER_DESCRIPTION = "The weather in a city."
OPENAI_WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": WEATHER_DESCRIPTION, "parameters": WEATHER_SCHEMA},
}
ANTHROPIC_WEATHER_TOOL = {"name": "get_weather", "description": WEATHER_DESCRIPTION, "input_schema": WEATHER_SCHEMA}

# A real 1x1 PNG.
PNG_B64 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f01f00050001ff89993d1d"
        "0000000049454e44ae426082"
    )
).decode()
PNG_DATA_URI = f"data:image/png;base64,{PNG_B64}"


def openai_key(gateway, **fields):
    return gateway.create_key(request_shape="openai", **fields)


def anthropic_key(gateway, **fields):
    return gateway.create_key(request_shape="anthropic", **fields)


def user(text):
    return [{"role": "user", "content": text}]


def upstream(mock, tag, path):
    """The one request the provider got for ``tag``, checked to be on ``path``."""
    recorded = mock.one_request_with(tag)
    assert recorded["path"] == path, f"the provider got {recorded['method']} {recorded['path']}, expected {path}"
    return recorded


def assert_anthropic_upstream(recorded):
    """The provider got Anthropic's format with the operator's Anthropic key."""
    assert recorded["path"] == "/v1/messages"
    assert header_values(recorded, "x-api-key") == [ANTHROPIC_PROVIDER_KEY]
    assert header_values(recorded, "authorization") == []
    assert len(header_values(recorded, "anthropic-version")) == 1
    body = recorded["body"]
    assert body["model"] == CLAUDE
    for field in ("stream_options", "n", "max_completion_tokens", "tool_calls", "parallel_tool_calls"):
        assert field not in body, f"an OpenAI field {field!r} reached Anthropic: {body}"
    for message in body["messages"]:
        assert message["role"] in ("user", "assistant"), message


def assert_openai_upstream(recorded):
    """The provider got OpenAI's format with the operator's OpenAI key."""
    assert recorded["path"] == "/v1/chat/completions"
    assert header_values(recorded, "authorization") == [f"Bearer {OPENAI_PROVIDER_KEY}"]
    assert header_values(recorded, "x-api-key") == []
    body = recorded["body"]
    assert body["model"] == GPT
    for field in ("max_tokens", "system", "stop_sequences", "tool_choice", "anthropic_version"):
        if field == "tool_choice" and "tools" in body:
            continue
        assert field not in body, f"an Anthropic field {field!r} reached OpenAI: {body}"
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                assert part["type"] in ("text", "image_url", "file"), f"an Anthropic block reached OpenAI: {part}"


# ===========================================================================
# The OpenAI SDK (openai-format key) on a Claude model.
# ===========================================================================


def test_openai_sdk_on_claude_text(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    tag = marker()
    prompt = f"Say something. {tag}"

    raw = client.chat.completions.with_raw_response.create(model=CLAUDE, messages=user(prompt))
    completion = raw.parse()

    assert sent.count == 1
    assert sent.requests[0].url.path == "/v1/chat/completions"
    assert completion.object == "chat.completion"
    assert completion.model == CLAUDE
    assert completion.id.startswith("chatcmpl-")
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == mock_text()
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    prompt_tokens = mock_anthropic_input_tokens([prompt])
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == MOCK_DEFAULT_OUTPUT_TOKENS
    assert completion.usage.total_tokens == prompt_tokens + MOCK_DEFAULT_OUTPUT_TOKENS
    assert completion.usage.prompt_tokens_details.cached_tokens == 0

    recorded = upstream(mock, tag, "/v1/messages")
    assert_anthropic_upstream(recorded)
    body = recorded["body"]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    # No max_tokens from the client: the model's maximum output (Anthropic requires one).
    assert body["max_tokens"] == CLAUDE_MAX_OUTPUT
    assert "stream" not in body or body["stream"] is False
    assert "system" not in body

    cost = expected_cost(CLAUDE, input=prompt_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert Decimal(raw.headers["x-spendgate-cost"]) == cost
    after = gateway.get_key(key["spend_key_id"])
    assert Decimal(after["total_spend"]) == cost
    assert Decimal(after["current_spend"]) == cost
    assert after["total_requests"] == 1


def test_openai_sdk_on_claude_system_and_developer_messages(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    system = "You are terse."
    developer = "Answer in Latin."
    prompt = f"[[mock:tokens:5]] hello {tag}"

    completion = client.chat.completions.create(
        model=CLAUDE,
        max_completion_tokens=300,
        temperature=0.5,
        stop=["END"],
        messages=[
            {"role": "system", "content": system},
            {"role": "developer", "content": developer},
            {"role": "user", "content": prompt},
        ],
    )

    assert completion.choices[0].message.content == mock_text(5)
    assert completion.choices[0].finish_reason == "stop"
    body = upstream(mock, tag, "/v1/messages")["body"]
    assert body["system"] == [{"type": "text", "text": system}, {"type": "text", "text": developer}]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.5
    assert body["stop_sequences"] == ["END"]
    # The mock counts the system text's characters, and one message.
    prompt_tokens = mock_anthropic_input_tokens([prompt], system=system + developer)
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == 5
    assert gateway.spend(key["spend_key_id"]) == expected_cost(CLAUDE, input=prompt_tokens, output=5)


def test_openai_sdk_on_claude_stream_is_incremental_and_matches_non_streamed(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"])
    tag = marker()
    prompt = f"[[mock:tokens:23]] [[mock:slow:30]] same text either way {tag}"

    whole = client.chat.completions.create(model=CLAUDE, messages=user(prompt))
    sent.reset()
    chunks, deltas, arrivals = [], [], []
    for chunk in client.chat.completions.create(
        model=CLAUDE, messages=user(prompt), stream=True, stream_options={"include_usage": True}
    ):
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
            arrivals.append(time.monotonic())

    assert sent.count == 1
    assert whole.choices[0].message.content == mock_text(23)
    assert len(deltas) == 23
    assert "".join(deltas) == whole.choices[0].message.content
    # 23 deltas 30 ms apart upstream: they reach the client as they come.
    assert arrivals[-1] - arrivals[0] >= 0.4, f"deltas arrived within {arrivals[-1] - arrivals[0]:.3f} s"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.model == CLAUDE for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    # include_usage: exactly one usage chunk, the last, with no choices.
    assert [c for c in chunks if not c.choices] == [chunks[-1]]
    usage = chunks[-1].usage
    prompt_tokens = mock_anthropic_input_tokens([prompt])
    assert usage.prompt_tokens == prompt_tokens
    assert usage.completion_tokens == 23
    assert usage.total_tokens == prompt_tokens + 23
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert all(c.usage is None for c in chunks[:-1])

    streamed_request, = [r for r in mock.requests_with(tag) if r["body"].get("stream") is True]
    assert_anthropic_upstream(streamed_request)
    assert "stream_options" not in streamed_request["body"]

    one = expected_cost(CLAUDE, input=prompt_tokens, output=23)
    assert gateway.wait_for_spend(key["spend_key_id"], 2 * one) == 2 * one
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 2


def test_openai_sdk_on_claude_stream_without_include_usage_has_no_usage_and_is_charged(
    gateway, mock, openai_client
):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    prompt = f"[[mock:tokens:9]] [[mock:cached:64]] {tag}"

    chunks = list(client.chat.completions.create(model=CLAUDE, messages=user(prompt), stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_text(9)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 9
    assert [c for c in chunks if not c.choices] == []
    assert all(c.usage is None for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]
    upstream(mock, tag, "/v1/messages")
    cost = expected_cost(CLAUDE, input=mock_anthropic_input_tokens([prompt]), cached_input=64, output=9)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_openai_sdk_on_claude_tool_call_non_streamed(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    prompt = f"What is the weather in Paris? [[mock:tool]] {tag}"

    completion = client.chat.completions.create(
        model=CLAUDE, messages=user(prompt), tools=[OPENAI_WEATHER_TOOL], tool_choice="required"
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    # Claude's text block before the tool_use block is the message's content.
    assert choice.message.content == MOCK_TOOL_PREAMBLE
    calls = choice.message.tool_calls
    assert len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id.startswith("toolu_")
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == MOCK_TOOL_ARGUMENTS
    prompt_tokens = mock_anthropic_input_tokens([prompt])
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == MOCK_TOOL_OUTPUT_TOKENS

    body = upstream(mock, tag, "/v1/messages")["body"]
    assert body["tools"] == [
        {"name": "get_weather", "description": WEATHER_DESCRIPTION, "input_schema": WEATHER_SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "any"}
    cost = expected_cost(CLAUDE, input=prompt_tokens, output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_openai_sdk_on_claude_tool_call_streamed(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    prompt = f"What is the weather in Paris? [[mock:tool]] {tag}"

    with client.chat.completions.stream(
        model=CLAUDE,
        messages=user(prompt),
        tools=[OPENAI_WEATHER_TOOL],
        parallel_tool_calls=False,
        stream_options={"include_usage": True},
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    fragments = [e.arguments_delta for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert len([f for f in fragments if f]) > 1, fragments
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert len(done) == 1
    assert done[0].name == "get_weather"
    assert done[0].index == 0
    assert json.loads(done[0].arguments) == MOCK_TOOL_ARGUMENTS
    content_done = [e for e in events if e.type == "content.done"]
    assert [e.content for e in content_done] == [MOCK_TOOL_PREAMBLE]

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == MOCK_TOOL_PREAMBLE
    calls = choice.message.tool_calls
    assert len(calls) == 1
    assert calls[0].id.startswith("toolu_")
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == MOCK_TOOL_ARGUMENTS
    prompt_tokens = mock_anthropic_input_tokens([prompt])
    assert final.usage.prompt_tokens == prompt_tokens
    assert final.usage.completion_tokens == MOCK_TOOL_OUTPUT_TOKENS

    body = upstream(mock, tag, "/v1/messages")["body"]
    assert body["stream"] is True
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    cost = expected_cost(CLAUDE, input=prompt_tokens, output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_openai_sdk_on_claude_tool_result_turn(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    prompt = f"What is the weather in Paris? [[mock:tool]] {tag}"
    first = client.chat.completions.create(model=CLAUDE, messages=user(prompt), tools=[OPENAI_WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    result = "18 degrees and sunny"

    messages = [
        {"role": "user", "content": prompt},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    second = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[OPENAI_WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == mock_text()
    assert second.choices[0].message.tool_calls is None

    recorded = [r for r in mock.requests_with(tag) if len(r["body"]["messages"]) == 3]
    assert len(recorded) == 1
    assert_anthropic_upstream(recorded[0])
    # Anthropic's own format: the call as a tool_use block with the parsed input, the
    # result as a tool_result block in a user turn.
    assert recorded[0]["body"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": prompt}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": MOCK_TOOL_PREAMBLE},
                {"type": "tool_use", "id": call.id, "name": "get_weather", "input": MOCK_TOOL_ARGUMENTS},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}]},
    ]
    prompt_tokens = mock_anthropic_input_tokens([prompt, MOCK_TOOL_PREAMBLE, result])
    assert second.usage.prompt_tokens == prompt_tokens
    cost = expected_cost(CLAUDE, input=mock_anthropic_input_tokens([prompt]), output=MOCK_TOOL_OUTPUT_TOKENS)
    cost += expected_cost(CLAUDE, input=prompt_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_openai_sdk_on_claude_images(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    text = f"What is in these images? {tag}"

    completion = client.chat.completions.create(
        model=CLAUDE,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": PNG_DATA_URI}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )

    assert completion.choices[0].message.content == mock_text()
    body = upstream(mock, tag, "/v1/messages")["body"]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    prompt_tokens = mock_anthropic_input_tokens([text])  # images are not text to the mock
    assert completion.usage.prompt_tokens == prompt_tokens
    assert gateway.spend(key["spend_key_id"]) == expected_cost(CLAUDE, input=prompt_tokens, output=16)


def test_openai_sdk_on_claude_finish_length_and_cached_usage_cost(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    tag = marker()
    prompt = f"[[mock:tokens:50]] [[mock:cached:1200]] [[mock:cache_write:300]] {tag}"

    completion = client.chat.completions.create(model=CLAUDE, max_tokens=7, messages=user(prompt))

    assert completion.choices[0].message.content == mock_text(7)
    assert completion.choices[0].finish_reason == "length"
    assert upstream(mock, tag, "/v1/messages")["body"]["max_tokens"] == 7
    uncached = mock_anthropic_input_tokens([prompt])
    # prompt_tokens INCLUDES the cache reads and writes; cached_tokens is the reads.
    assert completion.usage.prompt_tokens == uncached + 1200 + 300
    assert completion.usage.prompt_tokens_details.cached_tokens == 1200
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == uncached + 1500 + 7
    # Anthropic's native usage x the catalog: each figure once, at its own price.
    cost = expected_cost(CLAUDE, input=uncached, cached_input=1200, cache_write=300, output=7)
    assert cost == (
        Decimal(uncached) * 3 + Decimal(1200) * Decimal("0.30") + Decimal(300) * Decimal("3.75") + 7 * 15
    ) / 1_000_000
    assert gateway.spend(key["spend_key_id"]) == cost


def test_openai_sdk_on_claude_stream_usage_with_cache(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    prompt = f"[[mock:tokens:6]] [[mock:cached:2000]] {marker()}"

    chunks = list(
        client.chat.completions.create(
            model=CLAUDE, messages=user(prompt), stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == mock_text(6)
    usage = chunks[-1].usage
    uncached = mock_anthropic_input_tokens([prompt])
    assert usage.prompt_tokens == uncached + 2000
    assert usage.prompt_tokens_details.cached_tokens == 2000
    assert usage.completion_tokens == 6
    cost = expected_cost(CLAUDE, input=uncached, cached_input=2000, output=6)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


# ===========================================================================
# The Anthropic SDK (anthropic-format key) on a GPT model.
# ===========================================================================


def test_anthropic_sdk_on_gpt_text(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"])
    tag = marker()
    prompt = f"Say something. {tag}"

    raw = client.messages.with_raw_response.create(model=GPT, max_tokens=1024, messages=user(prompt))
    message = raw.parse()

    assert sent.count == 1
    assert sent.requests[0].url.path == "/v1/messages"
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == GPT
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == mock_text()
    assert message.stop_reason == "end_turn"
    input_tokens = mock_input_tokens([prompt])
    assert message.usage.input_tokens == input_tokens
    assert message.usage.output_tokens == MOCK_DEFAULT_OUTPUT_TOKENS
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0

    recorded = upstream(mock, tag, "/v1/chat/completions")
    assert_openai_upstream(recorded)
    body = recorded["body"]
    assert body["messages"] == [{"role": "user", "content": prompt}]
    assert body["max_completion_tokens"] == 1024
    assert "stream" not in body or body["stream"] is False

    cost = expected_cost(GPT, input=input_tokens, output=MOCK_DEFAULT_OUTPUT_TOKENS)
    assert Decimal(raw.headers["x-spendgate-cost"]) == cost
    after = gateway.get_key(key["spend_key_id"])
    assert Decimal(after["total_spend"]) == cost
    assert Decimal(after["current_spend"]) == cost
    assert after["total_requests"] == 1


def test_anthropic_sdk_on_gpt_system_and_parameters(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    tag = marker()
    system = "You are terse."
    prompt = f"[[mock:tokens:4]] hello {tag}"

    message = client.messages.create(
        model=GPT,
        max_tokens=200,
        system=system,
        stop_sequences=["END"],
        metadata={"user_id": "user-42"},
        messages=user(prompt),
        # This SDK release has no `temperature` argument; clients still send it.
        extra_body={"temperature": 0.3},
    )

    assert message.content[0].text == mock_text(4)
    body = upstream(mock, tag, "/v1/chat/completions")["body"]
    assert body["messages"] == [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    assert body["max_completion_tokens"] == 200
    assert body["temperature"] == 0.3
    assert body["stop"] == ["END"]
    assert body["user"] == "user-42"
    assert "metadata" not in body
    # The mock counts the system message as a message of its own.
    input_tokens = mock_input_tokens([system, prompt])
    assert message.usage.input_tokens == input_tokens
    assert gateway.spend(key["spend_key_id"]) == expected_cost(GPT, input=input_tokens, output=4)


def test_anthropic_sdk_on_gpt_stream_is_incremental_and_matches_non_streamed(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"])
    tag = marker()
    prompt = f"[[mock:tokens:23]] [[mock:slow:30]] same text either way {tag}"

    whole = client.messages.create(model=GPT, max_tokens=100, messages=user(prompt))
    sent.reset()
    deltas, arrivals = [], []
    with client.messages.stream(model=GPT, max_tokens=100, messages=user(prompt)) as stream:
        for text in stream.text_stream:
            deltas.append(text)
            arrivals.append(time.monotonic())
        final = stream.get_final_message()

    assert sent.count == 1
    assert whole.content[0].text == mock_text(23)
    assert len(deltas) == 23
    assert "".join(deltas) == whole.content[0].text
    assert arrivals[-1] - arrivals[0] >= 0.4, f"deltas arrived within {arrivals[-1] - arrivals[0]:.3f} s"
    assert final.model == GPT
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == mock_text(23)
    assert final.stop_reason == "end_turn"
    input_tokens = mock_input_tokens([prompt])
    # message_start carries an estimate; message_delta the provider's real figures,
    # which the SDK applies to the final message.
    assert final.usage.input_tokens == input_tokens
    assert final.usage.output_tokens == 23
    assert final.usage.cache_read_input_tokens == 0

    streamed_request, = [r for r in mock.requests_with(tag) if r["body"].get("stream") is True]
    assert_openai_upstream(streamed_request)
    # The gateway asked for the usage chunk.
    assert streamed_request["body"]["stream_options"]["include_usage"] is True

    one = expected_cost(GPT, input=input_tokens, output=23)
    assert gateway.wait_for_spend(key["spend_key_id"], 2 * one) == 2 * one
    assert gateway.get_key(key["spend_key_id"])["total_requests"] == 2


def test_anthropic_sdk_on_gpt_raw_stream_events(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"[[mock:tokens:11]] [[mock:cached:300]] {marker()}"

    events = list(client.messages.create(model=GPT, max_tokens=512, messages=user(prompt), stream=True))

    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_delta") == 11
    assert types.count("content_block_start") == types.count("content_block_stop") == 1
    assert {e.index for e in events if e.type.startswith("content_block")} == {0}
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == mock_text(11)
    start = events[0].message
    assert start.model == GPT
    assert start.usage.input_tokens > 0  # an estimate, never zero
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert delta.delta.stop_reason == "end_turn"
    uncached = mock_input_tokens([prompt])
    # The real figures: OpenAI's prompt_tokens (which includes cached) minus cached.
    assert delta.usage.input_tokens == uncached
    assert delta.usage.cache_read_input_tokens == 300
    assert delta.usage.output_tokens == 11
    cost = expected_cost(GPT, input=uncached, cached_input=300, output=11)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_anthropic_sdk_on_gpt_tool_use_non_streamed(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    tag = marker()
    prompt = f"What is the weather in Paris? [[mock:tool]] {tag}"

    message = client.messages.create(
        model=GPT,
        max_tokens=1024,
        messages=user(prompt),
        tools=[ANTHROPIC_WEATHER_TOOL],
        tool_choice={"type": "any"},
    )

    assert message.stop_reason == "tool_use"
    # OpenAI's answer has no text: only the tool_use block.
    assert [b.type for b in message.content] == ["tool_use"]
    tool_use = message.content[0]
    assert tool_use.name == "get_weather"
    assert tool_use.id.startswith("call_")
    assert tool_use.input == MOCK_TOOL_ARGUMENTS
    input_tokens = mock_input_tokens([prompt])
    assert message.usage.input_tokens == input_tokens
    assert message.usage.output_tokens == MOCK_TOOL_OUTPUT_TOKENS

    body = upstream(mock, tag, "/v1/chat/completions")["body"]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER_DESCRIPTION, "parameters": WEATHER_SCHEMA},
        }
    ]
    assert body["tool_choice"] == "required"
    cost = expected_cost(GPT, input=input_tokens, output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_anthropic_sdk_on_gpt_tool_use_streamed(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    tag = marker()
    prompt = f"What is the weather in Paris? [[mock:tool]] {tag}"

    with client.messages.stream(
        model=GPT, max_tokens=1024, messages=user(prompt), tools=[ANTHROPIC_WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    json_deltas = [e.partial_json for e in events if e.type == "input_json"]
    assert len([d for d in json_deltas if d]) > 1
    assert json.loads("".join(json_deltas)) == MOCK_TOOL_ARGUMENTS
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["tool_use"]
    tool_use = final.content[0]
    assert tool_use.name == "get_weather"
    assert tool_use.id.startswith("call_")
    assert isinstance(tool_use.input, dict)
    assert tool_use.input == MOCK_TOOL_ARGUMENTS
    input_tokens = mock_input_tokens([prompt])
    assert final.usage.input_tokens == input_tokens
    assert final.usage.output_tokens == MOCK_TOOL_OUTPUT_TOKENS

    body = upstream(mock, tag, "/v1/chat/completions")["body"]
    assert body["stream"] is True
    assert body["stream_options"]["include_usage"] is True
    cost = expected_cost(GPT, input=input_tokens, output=MOCK_TOOL_OUTPUT_TOKENS)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


def test_anthropic_sdk_on_gpt_tool_result_turn(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    tag = marker()
    prompt = f"What is the weather in Paris? [[mock:tool]] {tag}"
    first = client.messages.create(model=GPT, max_tokens=256, messages=user(prompt), tools=[ANTHROPIC_WEATHER_TOOL])
    tool_use = first.content[0]
    result = "18 degrees and sunny"
    follow_up = "Now say it in 6 words. [[mock:tokens:6]]"

    messages = [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": [{"type": "text", "text": result}]},
                {"type": "text", "text": follow_up},
            ],
        },
    ]
    second = client.messages.create(model=GPT, max_tokens=256, messages=messages, tools=[ANTHROPIC_WEATHER_TOOL])

    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]
    assert second.content[0].text == mock_text(6)

    recorded = [r for r in mock.requests_with(tag) if len(r["body"]["messages"]) > 1]
    assert len(recorded) == 1
    assert_openai_upstream(recorded[0])
    # OpenAI's own format: tool_calls on the assistant message, the result as a
    # `role: tool` message, the text after it as a user message.
    sent_messages = recorded[0]["body"]["messages"]
    assert sent_messages[0] == {"role": "user", "content": prompt}
    assistant = sent_messages[1]
    assert assistant["role"] == "assistant"
    assert assistant.get("content") is None
    assert len(assistant["tool_calls"]) == 1
    call = assistant["tool_calls"][0]
    assert call["id"] == tool_use.id
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == MOCK_TOOL_ARGUMENTS
    assert sent_messages[2] == {"role": "tool", "tool_call_id": tool_use.id, "content": result}
    assert sent_messages[3] == {"role": "user", "content": follow_up}
    assert len(sent_messages) == 4

    input_tokens = mock_input_tokens([prompt, "", result, follow_up])
    assert second.usage.input_tokens == input_tokens
    assert second.usage.output_tokens == 6
    cost = expected_cost(GPT, input=mock_input_tokens([prompt]), output=MOCK_TOOL_OUTPUT_TOKENS)
    cost += expected_cost(GPT, input=input_tokens, output=6)
    assert gateway.spend(key["spend_key_id"]) == cost


def test_anthropic_sdk_on_gpt_image(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    tag = marker()
    text = f"What is in this image? {tag}"

    message = client.messages.create(
        model=GPT,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                    {"type": "text", "text": text},
                ],
            }
        ],
    )

    assert message.content[0].text == mock_text()
    body = upstream(mock, tag, "/v1/chat/completions")["body"]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": PNG_DATA_URI}},
                {"type": "text", "text": text},
            ],
        }
    ]
    input_tokens = mock_input_tokens([text])
    assert message.usage.input_tokens == input_tokens
    assert gateway.spend(key["spend_key_id"]) == expected_cost(GPT, input=input_tokens, output=16)


def test_anthropic_sdk_on_gpt_max_tokens_stop_reason_and_cached_cost(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    tag = marker()
    prompt = f"[[mock:tokens:50]] [[mock:cached:1200]] {tag}"

    message = client.messages.create(model=GPT, max_tokens=6, messages=user(prompt))

    assert message.content[0].text == mock_text(6)
    assert message.stop_reason == "max_tokens"
    assert upstream(mock, tag, "/v1/chat/completions")["body"]["max_completion_tokens"] == 6
    uncached = mock_input_tokens([prompt])
    # OpenAI's prompt_tokens (uncached + 1200) includes the cached tokens; Anthropic's
    # input_tokens does not.
    assert message.usage.input_tokens == uncached
    assert message.usage.cache_read_input_tokens == 1200
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens == 6
    cost = expected_cost(GPT, input=uncached, cached_input=1200, output=6)
    assert cost == (Decimal(uncached) * Decimal("0.15") + 1200 * Decimal("0.075") + 6 * Decimal("0.60")) / 1_000_000
    assert gateway.spend(key["spend_key_id"]) == cost


def test_anthropic_sdk_on_gpt_stream_final_usage_with_cache(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    prompt = f"[[mock:tokens:8]] [[mock:cached:4000]] {marker()}"

    with client.messages.stream(model=GPT, max_tokens=100, messages=user(prompt)) as stream:
        final = stream.get_final_message()

    assert final.content[0].text == mock_text(8)
    uncached = mock_input_tokens([prompt])
    assert final.usage.input_tokens == uncached  # prompt_tokens - cached
    assert final.usage.cache_read_input_tokens == 4000
    assert final.usage.output_tokens == 8
    cost = expected_cost(GPT, input=uncached, cached_input=4000, output=8)
    assert gateway.wait_for_spend(key["spend_key_id"], cost) == cost


# ===========================================================================
# Errors, refused and dropped parameters, long tool names.
# ===========================================================================


def test_openai_sdk_on_claude_provider_error_is_translated(gateway, mock, openai_client):
    key = openai_key(gateway)
    client, sent = openai_client(key["key"], max_retries=0)
    tag = marker()
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model=CLAUDE, messages=user(f"[[mock:error:529]] {tag}"))
    assert err.value.status_code == 529
    assert err.value.message.endswith("Overloaded")
    assert err.value.body["type"] == "server_error"  # OpenAI's format, not Anthropic's
    assert err.value.body["code"] == "overloaded_error"
    assert sent.count == 1
    # A 529 is the provider overloaded: the gateway tried twice more (upstream.retries,
    # default 2) before passing it back, each time in Anthropic's format.
    tried = mock.requests_with(tag)
    assert len(tried) == 3 and all(r["path"] == "/v1/messages" for r in tried), tried

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CLAUDE, messages=user("[[mock:error:400]]"))
    assert "requested with [[mock:error:400]]" in err.value.message
    assert gateway.spend(key["spend_key_id"]) == 0


def test_anthropic_sdk_on_gpt_provider_error_is_translated(gateway, mock, anthropic_client):
    key = anthropic_key(gateway)
    client, sent = anthropic_client(key["key"], max_retries=0)
    tag = marker()
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model=GPT, max_tokens=16, messages=user(f"[[mock:error:400]] {tag}"))
    assert err.value.status_code == 400
    assert "requested with [[mock:error:400]]" in err.value.message
    # Anthropic's error format, not OpenAI's.
    assert err.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "mock: invalid request (requested with [[mock:error:400]])",
        },
    }
    assert sent.count == 1
    upstream(mock, tag, "/v1/chat/completions")
    assert gateway.spend(key["spend_key_id"]) == 0


def test_openai_sdk_on_claude_mid_stream_error_raises(gateway, openai_client):
    key = openai_key(gateway)
    client, _ = openai_client(key["key"])
    got = []
    with pytest.raises(openai.APIError) as err:
        for chunk in client.chat.completions.create(
            model=CLAUDE, messages=user(f"[[mock:midstream_error]] {marker()}"), stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert "".join(got) == mock_text(2)
    # Anthropic's `event: error` became OpenAI's in-stream error object.
    assert err.value.message == "Overloaded (mock: [[mock:midstream_error]])"
    assert err.value.body["type"] == "server_error"
    assert err.value.body["code"] == "overloaded_error"


def test_anthropic_sdk_on_gpt_mid_stream_error_raises(gateway, anthropic_client):
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    got = []
    with pytest.raises(anthropic.APIStatusError) as err:
        with client.messages.stream(
            model=GPT, max_tokens=100, messages=user(f"[[mock:midstream_error]] {marker()}")
        ) as stream:
            for text in stream.text_stream:
                got.append(text)
    assert "".join(got) == mock_text(2)
    # OpenAI's in-stream error object became Anthropic's `event: error`.
    assert err.value.body == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The server had an error while processing your request. (mock: [[mock:midstream_error]])",
        },
    }


def test_refused_parameters_name_the_field(gateway, mock, openai_client, anthropic_client):
    client, _ = openai_client(openai_key(gateway)["key"])
    tag = marker()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CLAUDE, n=2, messages=user(tag))
    assert err.value.status_code == 400
    assert err.value.param == "n"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CLAUDE, frequency_penalty=0.5, messages=user(tag))
    assert "frequency_penalty" in err.value.message

    aclient, _ = anthropic_client(anthropic_key(gateway)["key"])
    with pytest.raises(anthropic.BadRequestError) as err:
        aclient.messages.create(model=GPT, max_tokens=16, messages=user(tag), extra_body={"top_k": 5})
    assert "top_k" in err.value.message
    # Refused before anything reached the provider.
    assert mock.requests_with(tag) == []


def test_dropped_parameters_are_listed(gateway, mock, openai_client):
    client, _ = openai_client(openai_key(gateway)["key"])
    tag = marker()
    raw = client.chat.completions.with_raw_response.create(model=CLAUDE, seed=7, messages=user(tag))
    assert raw.parse().choices[0].message.content == mock_text()
    assert "seed" in [d.strip() for d in raw.headers["x-spendgate-dropped"].split(",")]
    assert "seed" not in upstream(mock, tag, "/v1/messages")["body"]


def test_anthropic_sdk_on_gpt_long_tool_name_round_trips(gateway, mock, anthropic_client):
    """MCP tool names are often longer than OpenAI's 64 characters."""
    key = anthropic_key(gateway)
    client, _ = anthropic_client(key["key"])
    long_name = "mcp__weather-server__get_current_weather_conditions_for_a_city_by_name"
    assert len(long_name) > 64
    tool = {**ANTHROPIC_WEATHER_TOOL, "name": long_name}
    tag = marker()

    with client.messages.stream(
        model=GPT, max_tokens=256, messages=user(f"[[mock:tool]] {tag}"), tools=[tool]
    ) as stream:
        final = stream.get_final_message()

    sent_name = upstream(mock, tag, "/v1/chat/completions")["body"]["tools"][0]["function"]["name"]
    assert len(sent_name) <= 64
    assert sent_name != long_name
    (tool_use,) = final.content
    assert tool_use.name == long_name
    assert tool_use.input == MOCK_TOOL_ARGUMENTS


# ===========================================================================
# LangChain.
# ===========================================================================


def _chunk_text(chunk) -> str:
    content = chunk.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


@pytest.fixture
def chat_openai(gateway):
    from langchain_openai import ChatOpenAI

    def make(api_key, **kwargs):
        return ChatOpenAI(base_url=gateway.openai_base_url, api_key=api_key, max_retries=0, **kwargs)

    return make


@pytest.fixture
def chat_anthropic(gateway):
    from langchain_anthropic import ChatAnthropic

    def make(api_key, **kwargs):
        return ChatAnthropic(base_url=gateway.anthropic_base_url, api_key=api_key, max_retries=0, **kwargs)

    return make


def test_langchain_chat_openai_on_claude_stream_and_invoke(gateway, mock, chat_openai):
    key = openai_key(gateway)
    llm = chat_openai(key["key"], model=CLAUDE, stream_usage=True)
    tag = marker()
    prompt = f"[[mock:tokens:12]] [[mock:slow:20]] {tag}"

    chunks = list(llm.stream(prompt))

    texts = [_chunk_text(c) for c in chunks]
    assert len([t for t in texts if t]) == 12
    assert "".join(texts) == mock_text(12)
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata.get("finish_reason") == "stop"
    prompt_tokens = mock_anthropic_input_tokens([prompt])
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["input_tokens"] == prompt_tokens
    assert merged.usage_metadata["output_tokens"] == 12

    invoked = llm.invoke(prompt)
    assert invoked.content == mock_text(12)
    assert invoked.response_metadata["finish_reason"] == "stop"
    assert invoked.usage_metadata["input_tokens"] == prompt_tokens
    assert invoked.usage_metadata["output_tokens"] == 12

    recorded = mock.requests_with(tag)
    assert len(recorded) == 2
    for r in recorded:
        assert_anthropic_upstream(r)
    assert recorded[0]["body"]["stream"] is True  # .stream()
    assert not recorded[1]["body"].get("stream")  # .invoke()
    one = expected_cost(CLAUDE, input=prompt_tokens, output=12)
    assert gateway.wait_for_spend(key["spend_key_id"], 2 * one) == 2 * one


def test_langchain_chat_anthropic_on_gpt_stream_and_invoke(gateway, mock, chat_anthropic):
    key = anthropic_key(gateway)
    llm = chat_anthropic(key["key"], model=GPT, max_tokens=256)
    tag = marker()
    prompt = f"[[mock:tokens:12]] [[mock:slow:20]] {tag}"

    chunks = list(llm.stream(prompt))

    texts = [_chunk_text(c) for c in chunks]
    assert len([t for t in texts if t]) == 12
    assert "".join(texts) == mock_text(12)
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata.get("stop_reason") == "end_turn"
    input_tokens = mock_input_tokens([prompt])
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["input_tokens"] == input_tokens
    assert merged.usage_metadata["output_tokens"] == 12

    invoked = llm.invoke(prompt)
    assert _chunk_text(invoked) == mock_text(12)
    assert invoked.response_metadata["stop_reason"] == "end_turn"
    assert invoked.usage_metadata["input_tokens"] == input_tokens
    assert invoked.usage_metadata["output_tokens"] == 12

    recorded = mock.requests_with(tag)
    assert len(recorded) == 2
    for r in recorded:
        assert_openai_upstream(r)
        assert r["body"]["max_completion_tokens"] == 256
    assert recorded[0]["body"]["stream"] is True  # .stream()
    assert recorded[0]["body"]["stream_options"]["include_usage"] is True
    assert not recorded[1]["body"].get("stream")  # .invoke()
    one = expected_cost(GPT, input=input_tokens, output=12)
    assert gateway.wait_for_spend(key["spend_key_id"], 2 * one) == 2 * one


def test_langchain_tool_calls_cross_format(gateway, chat_openai, chat_anthropic):
    """LangChain's tool binding, both ways: the parsed tool call comes back."""
    tool = {"name": "get_weather", "description": WEATHER_DESCRIPTION, "parameters": WEATHER_SCHEMA}

    on_claude = chat_openai(openai_key(gateway)["key"], model=CLAUDE).bind_tools([tool])
    msg = on_claude.invoke(f"Weather? [[mock:tool]] {marker()}")
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("get_weather", MOCK_TOOL_ARGUMENTS)]
    assert msg.tool_calls[0]["id"].startswith("toolu_")

    on_gpt = chat_anthropic(anthropic_key(gateway)["key"], model=GPT, max_tokens=256).bind_tools([tool])
    merged = None
    for chunk in on_gpt.stream(f"Weather? [[mock:tool]] {marker()}"):
        merged = chunk if merged is None else merged + chunk
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("get_weather", MOCK_TOOL_ARGUMENTS)]
    assert merged.tool_calls[0]["id"].startswith("call_")
