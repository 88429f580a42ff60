"""`--output-format sarif`: a valid SARIF 2.1.0 log with every rule and its help text."""

from __future__ import annotations

import json

import pytest

from gptlint.diagnostics import Diagnostic, Fix
from gptlint.output import FORMATS
from gptlint.rules import ALL_RULES

LEVELS = {"none", "note", "warning", "error"}


def _log(diagnostics):
    return json.loads(FORMATS["sarif"](diagnostics))


def test_log_has_the_required_sarif_structure():
    log = _log([])
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "gptlint" and driver["version"]
    assert run["results"] == []


def test_every_rule_is_listed_with_help_text_and_level():
    rules = _log([])["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.code for rule in ALL_RULES]
    for entry, rule in zip(rules, ALL_RULES, strict=True):
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["help"]["text"] == rule.explanation()
        assert entry["defaultConfiguration"]["level"] in LEVELS
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
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    first, second = log["runs"][0]["results"]
    assert rules[first["ruleIndex"]]["id"] == first["ruleId"] == "GPT101"
    assert first["level"] == "error" and first["message"]["text"] == "n_embd=512 ..."
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "config/my%20run.py"
    assert location["region"] == {"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 7}
    assert first["properties"]["fix"] == {"applicability": "safe", "message": "set n_head = 8"}
    assert second["level"] == "note"
    assert second["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "file:///abs/c.py"
    )
    region = second["locations"][0]["physicalLocation"]["region"]
    assert region["endLine"] >= region["startLine"] >= 1


def test_cli_writes_sarif_for_a_config(tmp_path, capsys):
    from gptlint.cli import main

    path = tmp_path / "c.py"
    path.write_text("n_head = 12\nn_embd = 512\n")
    code = main([str(path), "--output-format", "sarif", "--select", "GPT101"])
    out, err = capsys.readouterr()
    assert (code, err) == (1, "")
    log = json.loads(out)
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "GPT101" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2


# The SARIF 2.1.0 objects gptlint writes, by the spec's section: the properties each may have
# (those gptlint uses, with the others the spec defines that a reader could expect) and those
# it must have. No PyPI package ships the OASIS schema file (sarif-om, sarif-tools and
# sarif-pydantic do not), so this is checked here, object by object, against the spec's text.
SPEC = {
    # name: (section, allowed properties, required properties)
    "sarifLog": ("3.13", {"$schema", "version", "runs", "properties"}, {"version", "runs"}),
    "run": ("3.14", {"tool", "results", "columnKind", "properties"}, {"tool"}),
    "tool": ("3.18", {"driver", "extensions", "properties"}, {"driver"}),
    "toolComponent": (
        "3.19",
        {"name", "version", "semanticVersion", "informationUri", "rules", "properties"},
        {"name"},
    ),
    "reportingDescriptor": (
        "3.49",
        {
            "id",
            "name",
            "shortDescription",
            "fullDescription",
            "help",
            "helpUri",
            "defaultConfiguration",
            "properties",
        },
        {"id"},
    ),
    "reportingConfiguration": ("3.50", {"enabled", "level", "rank", "properties"}, set()),
    "multiformatMessageString": ("3.12", {"text", "markdown", "properties"}, {"text"}),
    "message": ("3.11", {"text", "markdown", "id", "arguments", "properties"}, {"text"}),
    "result": (
        "3.27",
        {"ruleId", "ruleIndex", "level", "message", "locations", "fixes", "properties"},
        {"message"},
    ),
    "location": ("3.28", {"physicalLocation", "message", "properties"}, set()),
    "physicalLocation": ("3.29", {"artifactLocation", "region", "properties"}, set()),
    "artifactLocation": ("3.4", {"uri", "uriBaseId", "index", "properties"}, set()),
    "region": (
        "3.30",
        {"startLine", "startColumn", "endLine", "endColumn", "charOffset", "charLength"},
        set(),
    ),
    "fix": ("3.55", {"description", "artifactChanges", "properties"}, {"artifactChanges"}),
    "artifactChange": (
        "3.56",
        {"artifactLocation", "replacements", "properties"},
        {"artifactLocation", "replacements"},
    ),
    "replacement": ("3.57", {"deletedRegion", "insertedContent", "properties"}, {"deletedRegion"}),
    "artifactContent": ("3.3", {"text", "binary", "rendered", "properties"}, set()),
}


def check_object(kind: str, value) -> None:
    section, allowed, required = SPEC[kind]
    where = f"{kind} (SARIF 2.1.0 §{section})"
    assert isinstance(value, dict), where
    assert set(value) <= allowed, f"{where}: unknown {set(value) - allowed}"
    assert required <= set(value), f"{where}: missing {required - set(value)}"
    if "properties" in value:
        assert isinstance(value["properties"], dict), where


def check_region(region: dict) -> None:
    """§3.30: 1-based lines and columns, the end not before the start (endColumn is exclusive:
    an equal start and end is an empty region, the insertion point of §3.57.3)."""
    check_object("region", region)
    assert all(isinstance(v, int) and v >= 1 for v in region.values()), region
    assert "startLine" in region, "§3.30.2: gptlint locates regions by line"
    start = (region["startLine"], region.get("startColumn", 1))
    end = (region.get("endLine", region["startLine"]), region.get("endColumn", start[1]))
    assert end >= start, region


def check_artifact_location(location: dict) -> None:
    check_object("artifactLocation", location)
    assert isinstance(location["uri"], str) and location["uri"]
    assert " " not in location["uri"] and "\\" not in location["uri"]


def check_log(log: dict) -> None:
    """Every object of a gptlint SARIF log, against SPEC and the spec's value constraints."""
    check_object("sarifLog", log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) >= 1
    for run in log["runs"]:
        check_object("run", run)
        assert run.get("columnKind", "unicodeCodePoints") in {"utf16CodeUnits", "unicodeCodePoints"}
        check_object("tool", run["tool"])
        driver = run["tool"]["driver"]
        check_object("toolComponent", driver)
        ids = []
        for rule in driver.get("rules", []):
            check_object("reportingDescriptor", rule)
            ids.append(rule["id"])
            for key in ("shortDescription", "fullDescription", "help"):
                if key in rule:
                    check_object("multiformatMessageString", rule[key])
            configuration = rule.get("defaultConfiguration", {})
            check_object("reportingConfiguration", configuration)
            assert configuration.get("level", "warning") in LEVELS
            assert isinstance(configuration.get("enabled", True), bool)
        assert len(ids) == len(set(ids)), "§3.49.3: rule ids are unique"
        for result in run.get("results", []):
            check_result(result, ids)


def check_result(result: dict, ids: list[str]) -> None:
    check_object("result", result)
    check_object("message", result["message"])
    assert result.get("level", "warning") in LEVELS
    if "ruleIndex" in result:  # §3.27.6: the index of the rule ruleId names
        assert ids[result["ruleIndex"]] == result["ruleId"]
    for location in result.get("locations", []):
        check_object("location", location)
        physical = location["physicalLocation"]
        check_object("physicalLocation", physical)
        assert {"artifactLocation", "address"} & set(physical), "§3.29.2"
        check_artifact_location(physical["artifactLocation"])
        check_region(physical["region"])
    for fix in result.get("fixes", []):
        check_object("fix", fix)
        check_object("message", fix["description"])
        assert len(fix["artifactChanges"]) >= 1, "§3.55.3: at least one artifact change"
        for change in fix["artifactChanges"]:
            check_object("artifactChange", change)
            check_artifact_location(change["artifactLocation"])
            assert len(change["replacements"]) >= 1, "§3.56.3: at least one replacement"
            for replacement in change["replacements"]:
                check_object("replacement", replacement)
                check_region(replacement["deletedRegion"])
                if "insertedContent" in replacement:
                    content = replacement["insertedContent"]
                    check_object("artifactContent", content)
                    assert isinstance(content["text"], str) and content["text"]


def test_a_fix_is_a_sarif_fix_with_its_replacements(tmp_path, capsys):
    from gptlint.cli import main

    path = tmp_path / "c.py"
    path.write_text("# a ~125M parameter model\nn_layer = 12\nn_head = 12\nn_embd = 512\n")
    assert main([str(path), "--output-format", "sarif", "--select", "GPT101,GPT502"]) == 1
    log = json.loads(capsys.readouterr().out)
    check_log(log)
    results = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    fix = results["GPT101"]["fixes"][0]
    assert fix["description"]["text"] == "set n_head = 8"
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == path.as_uri()
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 3, "startColumn": 10, "endLine": 3, "endColumn": 12},
            "insertedContent": {"text": "8"},
        }
    ]
    assert results["GPT502"]["properties"]["fix"]["applicability"] == "unsafe"
    assert results["GPT502"]["fixes"][0]["artifactChanges"][0]["replacements"]


def test_a_deletion_has_no_inserted_content_and_an_insertion_an_empty_region():
    from gptlint.output.edits import TextEdit

    fix = Fix("tidy", (), "safe")
    d = Diagnostic("GPT101", "error", "c.py", 1, 1, "m", 1, 2, fix)
    edits = {d: (TextEdit("", 1, 1, 2, 1), TextEdit("x = 1\n", 3, 1, 3, 1))}
    log = json.loads(FORMATS["sarif"]([d], edits))
    check_log(log)
    deletion, insertion = log["runs"][0]["results"][0]["fixes"][0]["artifactChanges"][0][
        "replacements"
    ]
    assert "insertedContent" not in deletion
    assert insertion["deletedRegion"] == {
        "startLine": 3,
        "startColumn": 1,
        "endLine": 3,
        "endColumn": 1,
    }


def test_the_bundled_examples_give_a_well_formed_log(capsys):
    from pathlib import Path

    from gptlint.cli import main

    examples = Path(__file__).resolve().parents[2] / "examples" / "config"
    main([str(examples), "--output-format", "sarif", "--exit-zero"])
    log = json.loads(capsys.readouterr().out)
    check_log(log)
    assert any("fixes" in r for r in log["runs"][0]["results"])


def test_the_structural_check_catches_what_the_spec_forbids():
    log = _log([])
    log["runs"][0]["tool"]["driver"]["rules"][0]["badKey"] = 1
    with pytest.raises(AssertionError):
        check_log(log)
    fix = {"description": {"text": "t"}, "artifactChanges": []}
    with pytest.raises(AssertionError):
        check_result({"message": {"text": "m"}, "fixes": [fix]}, [])
