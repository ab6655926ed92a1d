#!/usr/bin/env python3
"""Checks what `microscale bench-schemas --generate` wrote with an independent validator: the Python `jsonschema`
package (the draft each schema's $schema names, Draft 2020-12 otherwise, formats asserted). Prints one line per failure
and a summary; exits non-zero if any output fails to parse or validate, or was cut by the token budget.

usage: scripts/check-generated.py [reports/maskbench-generated.jsonl]"""
import json
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("needs the jsonschema package: python3 -m pip install jsonschema (or run it with .venv-test/bin/python)")

path = sys.argv[1] if len(sys.argv) > 1 else "reports/maskbench-generated.jsonl"
total = valid = cut = unparsable = unchecked = 0
for line in open(path, encoding="utf-8"):
    row = json.loads(line)
    total += 1
    cut += row["cutByBudget"]
    try:
        instance = json.loads(row["output"])
    except ValueError as e:
        unparsable += 1
        print(f"{row['file']}: does not parse ({e}): {row['output'][:200]!r}")
        continue
    schema = json.loads(row["schema"])
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(instance))
    except (jsonschema.exceptions.RefResolutionError, jsonschema.exceptions.SchemaError) as e:
        unchecked += 1
        print(f"{row['file']}: jsonschema cannot check it: {type(e).__name__}: {str(e)[:200]}")
        continue
    if errors:
        print(f"{row['file']}: {errors[0].message[:200]} at {list(errors[0].absolute_path)}: {row['output'][:200]!r}")
    else:
        valid += 1
print(f"jsonschema {jsonschema.__version__}: {valid} of {total} outputs valid ({100 * valid / max(1, total):.1f}%); "
      f"{unparsable} do not parse; {unchecked} jsonschema cannot check; {cut} cut by the token budget")
sys.exit(0 if valid == total and cut == 0 else 1)
