"""Structured output through the client libraries people use, against `microscale serve`, with their defaults: the
OpenAI SDK's `chat.completions.parse` with a Pydantic model, Instructor in JSON_SCHEMA and JSON modes, and
LangChain's `with_structured_output`. Prints one JSON line with what it saw; exits non-zero on any failed check."""
import json
import sys
from typing import Annotated, List, Literal, Optional, Union

import instructor
import openai
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, StringConstraints

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
seen = {"openai": openai.__version__, "instructor": instructor.__version__}


class Ticket(BaseModel):
    """A support ticket."""

    category: Literal["billing", "outage", "shipping", "other"]
    priority: int = Field(ge=1, le=5)
    order_id: Optional[str] = Field(default=None, pattern=r"^ORD-[0-9]{4}$")


messages = [
    {"role": "system", "content": "Extract the support ticket as JSON."},
    {"role": "user", "content": "My order ORD-1234 never arrived and I need it today!"},
]

# The OpenAI SDK's own structured-output helper: a strict json_schema from the Pydantic model, parsed back.
completion = client.chat.completions.parse(model="smollm2", messages=messages, response_format=Ticket, max_tokens=80, temperature=0)
ticket = completion.choices[0].message.parsed
assert isinstance(ticket, Ticket), completion
assert completion.choices[0].finish_reason == "stop", completion
# Compact JSON: a three-field object is a few dozen tokens, not a hundred and fifty.
assert completion.usage.completion_tokens <= 40, (completion.usage, completion.choices[0].message.content)
seen["parse"] = {"ticket": ticket.model_dump(), "completion_tokens": completion.usage.completion_tokens,
                 "content": completion.choices[0].message.content}

# Instructor, both JSON modes, with its defaults. JSON_SCHEMA sends the model's schema as a json_schema response format
# and must give a valid Ticket. JSON sends {"type": "json_object"} with the schema written into the prompt: the
# server must accept it and answer with a JSON object; whether a 135M model fills in the right members from a prompt
# is the model's skill, not the protocol's, so a validation failure there is reported, not hidden.
patched = instructor.from_openai(openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120), mode=instructor.Mode.JSON_SCHEMA)
result = patched.chat.completions.create(model="smollm2", messages=messages, response_model=Ticket, max_tokens=120, temperature=0)
assert isinstance(result, Ticket), result
seen["instructor_json_schema"] = result.model_dump()

patched = instructor.from_openai(openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120), mode=instructor.Mode.JSON)
try:
    result = patched.chat.completions.create(model="smollm2", messages=messages, response_model=Ticket, max_tokens=120, temperature=0,
                                             max_retries=1)
    seen["instructor_json"] = {"valid": True, "ticket": result.model_dump()}
except Exception as e:  # instructor's IncompleteOutputException or InstructorRetryException (their module moves)
    # The request was served: the last completion is a JSON object that did not fit the Pydantic model.
    completion = getattr(e, "last_completion", None)
    assert completion is not None, e
    content = completion.choices[0].message.content
    assert isinstance(json.loads(content), dict), content
    seen["instructor_json"] = {"valid": False, "object": json.loads(content), "finish_reason": completion.choices[0].finish_reason}

# LangChain's structured output with its default method for ChatOpenAI (json_schema), and json_mode (served as a JSON
# object; its fit to the model is reported as above).
llm = ChatOpenAI(model="smollm2", base_url=base + "/v1", api_key=key, max_retries=0, timeout=120, temperature=0, max_tokens=120)
result = llm.with_structured_output(Ticket).invoke(messages)
assert isinstance(result, Ticket), result
seen["langchain_json_schema"] = result.model_dump()
# What json_mode sends, asked directly: a JSON object even when the budget runs out (the constraint closes it).
raw = client.chat.completions.create(model="smollm2", messages=messages, response_format={"type": "json_object"}, max_tokens=120,
                                     temperature=0).choices[0].message.content
assert isinstance(json.loads(raw), dict), raw
try:
    seen["langchain_json_mode"] = {"valid": True, "ticket": llm.with_structured_output(Ticket, method="json_mode").invoke(messages).model_dump()}
except Exception as e:  # OutputParserException or LengthFinishReasonError: the object did not fit the model in time
    seen["langchain_json_mode"] = {"valid": False, "object": json.loads(raw), "error": type(e).__name__}

# Richer models, as applications write them: inheritance, $defs, a nested list of objects, a union of objects, optional
# members and a $ref with a sibling keyword; the strict schema the OpenAI SDK derives, and Pydantic's own schema through
# Instructor (no additionalProperties: undeclared members are allowed but not generated).
Short = Annotated[str, StringConstraints(max_length=24)]


class Address(BaseModel):
    street: Short
    city: Short


class Email(BaseModel):
    kind: Literal["email"]
    address: Short


class Phone(BaseModel):
    kind: Literal["phone"]
    number: str = Field(pattern=r"^\+?[0-9]{6,12}$")


class Order(BaseModel):
    order_id: str = Field(pattern=r"^ORD-[0-9]{4}$")
    quantity: int = Field(ge=1, le=9)


class Person(BaseModel):
    name: Short
    age: Optional[int] = Field(default=None, ge=0, le=130)


class Customer(Person):
    home: Address = Field(description="billing address")
    shipping: Optional[Address] = None
    contact: Union[Email, Phone]
    orders: List[Order] = Field(max_length=2)
    tags: List[Short] = Field(default_factory=list, max_length=2)


schema_text = json.dumps(Customer.model_json_schema())
assert "$defs" in schema_text and "anyOf" in schema_text and '"$ref"' in schema_text, schema_text
customer_messages = [
    {"role": "system", "content": "Extract the customer as JSON."},
    {"role": "user", "content": "Ana Silva (34), 12 Rua Augusta, Lisbon, ana@example.com, ordered ORD-1234 twice."},
]
completion = client.chat.completions.parse(model="smollm2", messages=customer_messages, response_format=Customer, max_tokens=400, temperature=0)
assert completion.choices[0].finish_reason == "stop", (completion.usage, completion.choices[0].message.content)
assert isinstance(completion.choices[0].message.parsed, Customer), completion
seen["parse_customer"] = {"completion_tokens": completion.usage.completion_tokens, "content": completion.choices[0].message.content}

patched = instructor.from_openai(openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120), mode=instructor.Mode.JSON_SCHEMA)
result = patched.chat.completions.create(model="smollm2", messages=customer_messages, response_model=Customer, max_tokens=400, temperature=0)
assert isinstance(result, Customer), result
seen["instructor_customer"] = result.model_dump()

# allOf inheritance as OpenAPI documents and older generators write it: the base by $ref, then the subtype's members.
inherited = {
    "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "minimum": 0, "maximum": 130}},
                         "required": ["name"]}},
    "allOf": [{"$ref": "#/$defs/Person"},
              {"type": "object", "properties": {"orders": {"type": "array", "maxItems": 2, "items": {"type": "string", "pattern": "^ORD-[0-9]{4}$"}}},
               "required": ["orders"]}],
}
raw = client.chat.completions.create(model="smollm2", messages=customer_messages, max_tokens=200, temperature=0,
                                     response_format={"type": "json_schema", "json_schema": {"name": "customer", "schema": inherited}})
assert raw.choices[0].finish_reason == "stop", raw
value = json.loads(raw.choices[0].message.content)
assert isinstance(value.get("name"), str) and len(value["name"]) <= 24 and isinstance(value.get("orders"), list), value
assert all(isinstance(o, str) and len(o) == 8 and o.startswith("ORD-") for o in value["orders"]), value
seen["allof_inheritance"] = value

print(json.dumps(seen))
