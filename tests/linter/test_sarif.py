"""`--output-format sarif`: a valid SARIF 2.1.0 log with every rule and its help text.

The logs the CLI writes are validated with jsonschema against data/sarif-2.1.0-emitted.schema.json,
the OASIS SARIF 2.1.0 schema's definitions for every object gptlint emits, transcribed there (no
PyPI package ships the official schema file).
"""

from __future__ import annotations

import copy
import io
import json
import re
import sys
from pathlib import Path

import pytest
from jsonschema import Draft4Validator, FormatChecker

from gptlint.command.cli import main
from gptlint.lint.diagnostics import Diagnostic, Fix
from gptlint.lint.edits import TextEdit
from gptlint.lint.rules import ALL_RULES
from gptlint.output import FORMATS

HERE = Path(__file__).resolve().parent
SCHEMA = json.loads((HERE / "data" / "sarif-2.1.0-emitted.schema.json").read_text())

# RFC 3986 (section 3 and appendix A), for the schema's "uri" and "uri-reference" formats:
# jsonschema checks them only with an extra package (rfc3987 or rfc3986-validator installed).
_PCT = "%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|{_PCT})"
_URI_REFERENCE = re.compile(
    rf"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):)?"
    rf"(?P<authority>//(?:[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]]|{_PCT})*)?"
    rf"(?P<path>(?:{_PCHAR}|/)*)"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?"
)
URI_FORMATS = FormatChecker(formats=())


@URI_FORMATS.checks("uri-reference")
def is_uri_reference(value) -> bool:
    """A URI or a relative reference; a relative path's first segment has no colon (it would
    read as a scheme)."""
    if not isinstance(value, str):
        return True
    match = _URI_REFERENCE.fullmatch(value)
    if match is None:
        return False
    relative_path = not match["scheme"] and not match["authority"]
    return not (relative_path and ":" in match["path"].split("/")[0])


@URI_FORMATS.checks("uri")
def is_uri(value) -> bool:
    """An absolute URI: a reference with a scheme."""
    if not isinstance(value, str):
        return True
    match = _URI_REFERENCE.fullmatch(value)
    return match is not None and match["scheme"] is not None


VALIDATOR = Draft4Validator(SCHEMA, format_checker=URI_FORMATS)


def check_log(log: dict) -> None:
    """The log against the schema, then what the spec asks that a JSON schema cannot state: a
    result's ruleIndex is the index of the rule its ruleId names (§3.27.5-6), and a region's end
    is not before its start (§3.30.2; endColumn is exclusive, so an equal start and end is an
    insertion point, §3.57.3)."""
    errors = [f"{e.json_path}: {e.message[:300]}" for e in VALIDATOR.iter_errors(log)]
    assert not errors, "\n".join(errors)
    for run in log["runs"]:
        rules = run["tool"]["driver"].get("rules", [])
        for result in run.get("results", []):
            if "ruleIndex" in result:
                assert rules[result["ruleIndex"]]["id"] == result["ruleId"], result
            regions = [
                location["physicalLocation"]["region"]
                for location in result.get("locations", [])
                if "region" in location["physicalLocation"]
            ]
            regions += [
                replacement["deletedRegion"]
                for fix in result.get("fixes", [])
                for change in fix["artifactChanges"]
                for replacement in change["replacements"]
            ]
            for region in regions:
                start = (region["startLine"], region.get("startColumn", 1))
                end_line = region.get("endLine", start[0])
                assert end_line >= start[0], region
                if end_line == start[0] and "endColumn" in region:
                    assert region["endColumn"] >= start[1], region


def _log(diagnostics, edits=None) -> dict:
    return json.loads(FORMATS["sarif"](diagnostics, edits))


def _cli(capsys, *args: str) -> tuple[int, dict]:
    """Run gptlint with SARIF output: its exit code and its log, checked."""
    code = main([*args, "--output-format", "sarif"])
    out, err = capsys.readouterr()
    assert err == ""
    log = json.loads(out)
    check_log(log)
    return code, log


def _results(log: dict) -> dict[str, dict]:
    return {result["ruleId"]: result for result in log["runs"][0]["results"]}


def _replacements(result: dict) -> list[dict]:
    (fix,) = result["fixes"]
    (change,) = fix["artifactChanges"]
    return change["replacements"]


def test_the_schema_is_a_draft_4_schema():
    Draft4Validator.check_schema(SCHEMA)


def test_every_rule_is_listed_with_help_text_and_level():
    log = _log([])
    check_log(log)
    assert log["runs"][0]["results"] == []
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.code for rule in ALL_RULES]
    for entry, rule in zip(rules, ALL_RULES, strict=True):
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["help"]["text"] == rule.explanation()
    by_id = {r["id"]: r for r in rules}
    assert by_id["GPT105"]["defaultConfiguration"]["level"] == "note"
    assert by_id["GPT204"]["defaultConfiguration"]["enabled"] is False


def test_results_point_at_their_rule_and_region():
    fix = Fix("set n_head = 8", (), "safe")
    diagnostics = [
        Diagnostic("GPT101", "error", "config/my run.py", 3, 1, "n_embd=512 ...", 3, 7, fix),
        Diagnostic("GPT105", "info", "/abs/c.py", 2, 5, "vocab ..."),
    ]
    log = _log(diagnostics)
    check_log(log)
    first, second = log["runs"][0]["results"]
    assert first["ruleId"] == "GPT101"
    assert first["level"] == "error" and first["message"]["text"] == "n_embd=512 ..."
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "config/my%20run.py"
    assert location["region"] == {"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 7}
    assert first["properties"]["fix"] == {"applicability": "safe", "message": "set n_head = 8"}
    assert "fixes" not in first  # no text edits given
    assert second["level"] == "note"
    assert second["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "file:///abs/c.py"
    )


def test_the_bundled_examples(capsys):
    _, log = _cli(capsys, str(HERE.parents[1] / "examples" / "config"), "--exit-zero")
    assert any("fixes" in result for result in log["runs"][0]["results"])


def test_safe_and_unsafe_fixes_with_insertions_and_deletions(project, capsys):
    (project / "c.py").write_text(
        "n_layer = 12\nn_head = 12\nn_embd = 512\nlearning_rat = 6e-4\n"
        "gradient_accumulation_steps = 5\n"
    )
    (project / "pretrained.py").write_text(
        "# finetune\ninit_from = 'gpt2'\nn_layer = 6\nn_head = 6\ndropout = 0.1\n"
    )
    code, log = _cli(
        capsys,
        "c.py",
        "pretrained.py",
        "--select",
        "GPT101,GPT201,GPT301,GPT401",
        "--world-size",
        "2",
    )
    assert code == 1
    results = _results(log)
    assert results.keys() == {"GPT101", "GPT201", "GPT301", "GPT401"}
    safety = {
        rule: result["properties"]["fix"]["applicability"] for rule, result in results.items()
    }
    assert safety == {"GPT101": "safe", "GPT201": "unsafe", "GPT301": "unsafe", "GPT401": "unsafe"}
    assert results["GPT101"]["fixes"][0]["description"]["text"] == "set n_head = 8"
    assert results["GPT101"]["fixes"][0]["artifactChanges"][0]["artifactLocation"] == {
        "uri": "c.py"
    }
    assert _replacements(results["GPT101"]) == [
        {
            "deletedRegion": {"startLine": 2, "startColumn": 10, "endLine": 2, "endColumn": 12},
            "insertedContent": {"text": "8"},
        }
    ]
    # an insertion: an empty region (start == end) and the inserted text
    assert _replacements(results["GPT201"]) == [
        {
            "deletedRegion": {"startLine": 4, "startColumn": 13, "endLine": 4, "endColumn": 13},
            "insertedContent": {"text": "e"},
        }
    ]
    # a deletion: the lines' region and no inserted content
    assert _replacements(results["GPT301"]) == [
        {"deletedRegion": {"startLine": 3, "startColumn": 1, "endLine": 5, "endColumn": 1}}
    ]


def test_statistics_stay_sarif_with_the_counts_in_the_runs_properties(project, capsys):
    (project / "a.py").write_text("n_layer = 12\nn_head = 12\nn_embd = 512\n")
    (project / "b.py").write_text("n_layer = 12\nn_head = 12\nn_embd = 500\n")
    code, log = _cli(capsys, "--select", "GPT101", "--statistics", "a.py", "b.py")
    assert code == 1
    (run,) = log["runs"]
    assert [r["ruleId"] for r in run["results"]] == ["GPT101", "GPT101"]
    assert run["properties"]["statistics"] == [
        {"code": "GPT101", "name": "embd-not-divisible-by-heads", "count": 2, "fixable": True}
    ]


def test_a_run_without_findings(project, capsys):
    (project / "c.py").write_text("n_layer = 12\nn_head = 12\nn_embd = 768\n")
    code, log = _cli(capsys, "c.py", "--select", "GPT101")
    assert code == 0
    assert log["runs"][0]["results"] == []


@pytest.mark.parametrize("content", [b"n_head = (\n", b"x = '\xe9'\n"], ids=["syntax", "encoding"])
def test_an_unreadable_file(project, capsys, content):
    (project / "bad.py").write_bytes(content)
    code, log = _cli(capsys, "bad.py")
    assert code == 2
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "GPT000" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "bad.py"}


@pytest.mark.parametrize(
    ("args", "uri"), [([], "-"), (["--stdin-filename", "sub dir/c.py"], "sub%20dir/c.py")]
)
def test_stdin(project, capsys, monkeypatch, args, uri):
    stdin = io.TextIOWrapper(io.BytesIO(b"n_head = 12\nn_embd = 512\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, log = _cli(capsys, "-", *args, "--select", "GPT101")
    assert code == 1
    (result,) = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": uri}
    (change,) = result["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"] == {"uri": uri}


def _a_log() -> dict:
    fix = Fix("set n_head = 8", (), "safe")
    diagnostic = Diagnostic("GPT101", "error", "c.py", 2, 1, "m", 2, 7, fix)
    log = _log([diagnostic], {diagnostic: (TextEdit("8", 1, 10, 1, 12),)})
    check_log(log)
    return log


def _result(log: dict) -> dict:
    return log["runs"][0]["results"][0]


def _location(log: dict) -> dict:
    return _result(log)["locations"][0]["physicalLocation"]


def _region(log: dict) -> dict:
    return _location(log)["region"]


def _rules(log: dict) -> list[dict]:
    return log["runs"][0]["tool"]["driver"]["rules"]


# A deliberately broken log, and the schema keyword that rejects it.
BROKEN = {
    "version": (lambda log: log.update(version="2.1"), "enum"),
    "$schema not an absolute URI": (
        lambda log: log.update({"$schema": "sarif-2.1.0.json"}),
        "format",
    ),
    "columnKind": (lambda log: log["runs"][0].update(columnKind="bytes"), "enum"),
    "a property SARIF does not define": (
        lambda log: _rules(log)[0].update(badKey=1),
        "additionalProperties",
    ),
    "a rule twice": (lambda log: _rules(log).append(copy.deepcopy(_rules(log)[0])), "uniqueItems"),
    "rule id missing": (lambda log: _rules(log)[0].pop("id"), "required"),
    "help without text": (lambda log: _rules(log)[0]["help"].pop("text"), "required"),
    "default level": (
        lambda log: _rules(log)[0]["defaultConfiguration"].update(level="fatal"),
        "enum",
    ),
    "enabled not a boolean": (
        lambda log: _rules(log)[0]["defaultConfiguration"].update(enabled="yes"),
        "type",
    ),
    "message missing": (lambda log: _result(log).pop("message"), "required"),
    "level": (lambda log: _result(log).update(level="fatal"), "enum"),
    "ruleIndex below -1": (lambda log: _result(log).update(ruleIndex=-2), "minimum"),
    "startLine 0": (lambda log: _region(log).update(startLine=0), "minimum"),
    "startColumn 0": (lambda log: _region(log).update(startColumn=0), "minimum"),
    "endColumn a string": (lambda log: _region(log).update(endColumn="7"), "type"),
    "charLength negative": (lambda log: _region(log).update(charLength=-1), "minimum"),
    "region without a start": (lambda log: _region(log).pop("startLine"), "anyOf"),
    "uri with a space": (
        lambda log: _location(log)["artifactLocation"].update(uri="my run.py"),
        "format",
    ),
    "no artifact location": (lambda log: _location(log).pop("artifactLocation"), "anyOf"),
    "no artifact changes": (
        lambda log: _result(log)["fixes"][0].update(artifactChanges=[]),
        "minItems",
    ),
    "no replacements": (
        lambda log: _result(log)["fixes"][0]["artifactChanges"][0].update(replacements=[]),
        "minItems",
    ),
    "replacement without its region": (
        lambda log: _replacements(_result(log))[0].pop("deletedRegion"),
        "required",
    ),
}


@pytest.mark.parametrize(("break_it", "keyword"), BROKEN.values(), ids=BROKEN.keys())
def test_the_schema_rejects_a_broken_log(break_it, keyword):
    log = _a_log()
    break_it(log)
    assert [error.validator for error in VALIDATOR.iter_errors(log)] == [keyword]
    with pytest.raises(AssertionError):
        check_log(log)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda log: _result(log).update(ruleIndex=0),
        lambda log: _region(log).update(endLine=1),
        lambda log: _region(log).update(startColumn=8),
    ],
    ids=["ruleIndex of another rule", "end line before the start", "end column before the start"],
)
def test_what_the_schema_cannot_state_is_checked_too(break_it):
    log = _a_log()
    break_it(log)
    assert VALIDATOR.is_valid(log)
    with pytest.raises(AssertionError):
        check_log(log)


@pytest.mark.parametrize(
    ("value", "reference", "absolute"),
    [
        ("file:///abs/my%20run.py", True, True),
        ("https://json.schemastore.org/sarif-2.1.0.json", True, True),
        ("sub%20dir/c.py", True, False),
        ("-", True, False),
        ("we%20ird%3Aname%231.py", True, False),
        ("my run.py", False, False),
        ("50%.py", False, False),
        ("a\\b.py", False, False),
        ("1a:b.py", False, False),
        ("x.py#a#b", False, False),
    ],
)
def test_the_uri_formats(value, reference, absolute):
    assert is_uri_reference(value) is reference
    assert is_uri(value) is absolute
