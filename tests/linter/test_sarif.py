"""`--output-format sarif`: a valid SARIF 2.1.0 log with every rule and its help text."""

from __future__ import annotations

import json

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
