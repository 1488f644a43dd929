"""The published JSON Schemas agree with what faultd accepts."""
import json

import jsonschema

from conftest import REPO

SCENARIO_SCHEMA = json.loads((REPO / "docs" / "scenario.schema.json").read_text())
REPORT_SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def test_schemas_are_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCENARIO_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)


def test_bundled_scenarios_match_the_schema():
    for path in sorted((REPO / "scenarios").glob("*.json")):
        jsonschema.validate(json.loads(path.read_text()), SCENARIO_SCHEMA)


def test_schema_rejects_what_faultd_rejects():
    """Every malformed file that is valid JSON is also refused by the schema,
    except those that need cross-references the schema cannot express."""
    needs_faultd = {"16-duplicate-workload.json", "18-invariant-bad-workload.json",
                    "21-duplicate-key.json",
                    "25-bad-signal-name.json", "26-undeclared-namespace.json",
                    "27-unknown-link.json", "29-overlapping-faults.json",
                    "30-bad-address.json", "31-drop-pct-140.json",
                    "32-delay-jitter-too-large.json", "34-rate-tap-ingress.json",
                    "35-lwip-on-a-veth.json", "36-syscall-errors-overlap.json"}
    for path in sorted((REPO / "tests" / "scenarios" / "bad").glob("*.json")):
        if path.name in needs_faultd:
            continue
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        try:
            jsonschema.validate(doc, SCENARIO_SCHEMA)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"the schema accepts {path.name}, faultd does not")
