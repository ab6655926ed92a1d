"""The official OpenAI Python client against `microscale serve`, unchanged: model list, a completion, a stream, a
JSON-schema response and the client's own error types. Prints one JSON line with what it saw; exits non-zero on any
failed check."""
import json
import sys

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
seen = {"client_version": openai.__version__}

models = [m.id for m in client.models.list().data]
assert "smollm2" in models, models
seen["models"] = models

reply = client.chat.completions.create(
    model="smollm2", messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
    max_tokens=12, temperature=0)
assert reply.choices[0].message.role == "assistant"
assert reply.choices[0].message.content.strip(), reply
assert reply.choices[0].finish_reason in ("stop", "length")
assert reply.usage.prompt_tokens > 0 and 0 < reply.usage.completion_tokens <= 12
seen["completion"] = reply.choices[0].message.content

stream = client.chat.completions.create(
    model="smollm2", messages=[{"role": "user", "content": "Count from one to five."}], max_tokens=16, temperature=0, stream=True)
pieces, finish = [], None
for chunk in stream:
    for choice in chunk.choices:
        pieces.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
streamed = "".join(pieces)
assert streamed.strip() and finish in ("stop", "length"), (pieces, finish)
# The stream and the plain call produce the same greedy text.
plain = client.chat.completions.create(
    model="smollm2", messages=[{"role": "user", "content": "Count from one to five."}], max_tokens=16, temperature=0)
assert plain.choices[0].message.content == streamed, (plain.choices[0].message.content, streamed)
seen["stream_chunks"] = len(pieces)

schema = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["billing", "outage", "shipping", "other"]},
        "urgent": {"type": "boolean"},
        "order_id": {"anyOf": [{"type": "string", "pattern": "^ORD-[0-9]{4}$"}, {"type": "null"}]},
    },
    "required": ["category", "urgent", "order_id"],
    "additionalProperties": False,
}
structured = client.chat.completions.create(
    model="smollm2",
    messages=[{"role": "user", "content": "My parcel for order ORD-1234 never arrived and I need it today!"}],
    max_tokens=60, temperature=0,
    response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema, "strict": True}})
value = json.loads(structured.choices[0].message.content)
assert list(value) == ["category", "urgent", "order_id"], value
assert value["category"] in ["billing", "outage", "shipping", "other"], value
assert isinstance(value["urgent"], bool)
assert value["order_id"] is None or (value["order_id"].startswith("ORD-") and len(value["order_id"]) == 8)
seen["structured"] = value

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as error:
    seen["unknown_model"] = error.status_code

try:
    openai.OpenAI(base_url=base + "/v1", api_key="wrong-key", max_retries=0).models.list()
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as error:
    seen["wrong_key"] = error.status_code

try:
    client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=100000)
    raise AssertionError("an oversized max_tokens was accepted")
except openai.BadRequestError as error:
    seen["too_many_tokens"] = error.status_code

print(json.dumps(seen))
