"""Defense settings in a configuration: targets that clear their trigger, a reserve, and
errors that name both keys of a problem and where each is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config

ACCOUNT = """
accounts:
  - name: main
    exchange: binanceusdm
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path)


def test_the_defaults_aim_beyond_their_triggers_and_have_no_reserve(tmp_path):
    actions = load(tmp_path, ACCOUNT).accounts[0].actions
    assert (actions.isolated.trigger, actions.isolated.target_distance) == ("warn", 0.15)
    assert (actions.cross.trigger, actions.cross.target_distance) == ("critical", 0.12)
    assert actions.reserve is None and actions.isolated.close_before == 0.03


def test_a_target_short_of_its_trigger_names_both_keys_and_their_lines(tmp_path):
    # isolated critical fires at distance 0.09 and holds until 0.09 + 2 points = 0.11
    # (wider than 0.09 x 1.05 = 0.0945): a target of 0.08 would leave it firing after every add
    text = (
        """thresholds:
  isolated:
    distance_critical: 0.09
actions:
  isolated:
    trigger: critical
    target_distance: 0.08
"""
        + ACCOUNT
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    (issue,) = info.value.errors
    assert issue.path == "actions.isolated.target_distance" and issue.line == 7
    assert "thresholds.isolated.distance_critical = 0.09" in issue.message
    assert "0.11" in issue.message and "(that key: line 3)" in issue.message


def test_an_account_trigger_that_its_inherited_target_cannot_clear_is_placed_there(tmp_path):
    # cross warn fires at 0.15 and holds until 0.1575: the default 0.12 cannot clear it
    text = ACCOUNT + "    actions:\n      cross: {trigger: warn}\n"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    (issue,) = info.value.errors
    assert issue.path == "accounts[0].actions.cross.trigger" and issue.line == 6
    assert "actions.cross.target_distance 0.12" in issue.message
    assert "thresholds.cross.distance_warn = 0.15" in issue.message


def test_ratio_targets_and_advice_targets_are_checked_too(tmp_path):
    text = (
        """alerts:
  defense_target_distance: 0.05
actions:
  cross: {target_ratio: 0.9}
"""
        + ACCOUNT
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    paths = {issue.path for issue in info.value.errors}
    assert paths == {"alerts.defense_target_distance", "actions.cross.target_ratio"}


def test_close_before_must_come_after_the_adds_and_a_reserve_needs_its_caps(tmp_path):
    text = (
        """actions:
  isolated: {close_before: 0.2}
  reserve: {from: savings}
"""
        + ACCOUNT
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    messages = {issue.path: issue.message for issue in info.value.errors}
    assert "below target_distance" in messages["actions.isolated"]
    assert "spot" in messages["actions.reserve.from"]
    assert "actions.reserve.max_per_action" in messages
    config = load(
        tmp_path,
        "actions:\n  reserve: {from: funding, max_per_action: 500, max_per_day: 2000}\n" + ACCOUNT,
    )
    reserve = config.accounts[0].actions.reserve
    assert reserve is not None and (reserve.from_, reserve.asset) == ("funding", "USDT")


def test_an_unknown_key_under_the_reserve_gets_a_suggestion(tmp_path):
    text = "actions:\n  reserve: {from: spot, max_per_action: 1, max_per_dya: 2}\n" + ACCOUNT
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert any("did you mean 'max_per_day'" in i.message for i in info.value.errors)
