"""The venue registry: one table of what each exchange can do, held to the engine's models,
to the venue packages, to the configuration (refused at load) and to the README."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from monitor.cli import main
from monitor.config import ConfigError, load_config
from monitor.daemon.runner import _load_usable
from monitor.engine.models import EXACT_MODELS, model_for
from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.venues.binance.adapter import BinanceUsdMAdapter
from monitor.venues.binance.userstream import BinanceUserStream
from monitor.venues.generic.adapter import BingxAdapter
from monitor.venues.registry import (
    OTHER,
    VENUES,
    About,
    RegistryError,
    Venue,
    _index,
    adapter_for,
    check_models,
    lacks,
    user_stream_for,
    venue_for,
)
from monitor.venues.table import markdown, screen

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ABOUT = About("cross", "", "nothing yet")


# --- the registry and the engine's models ----------------------------------------------


def test_every_venue_declared_exact_is_priced_by_its_own_model_and_the_rest_generically():
    check_models(VENUES, EXACT_MODELS)  # what the registry does at import
    for venue in VENUES:
        model = model_for(venue.ccxt_id)
        assert model.exact is venue.exact, venue.ccxt_id
        assert (model.name == "generic") is (not venue.exact), venue.ccxt_id
    assert model_for("kraken").name == "generic" and not OTHER.exact


def test_a_venue_declared_exact_without_a_registered_model_fails_loudly():
    newcomer = Venue("newex", "NewEx", ExchangeAdapter, ABOUT, exact=True)
    with pytest.raises(RegistryError, match="newex: declared exact, but monitor/engine/models"):
        check_models([*VENUES, newcomer], EXACT_MODELS)


def test_an_exact_model_the_registry_calls_generic_fails_too():
    demoted = [Venue(v.ccxt_id, v.name, v.adapter, v.about) if v.ccxt_id == "okx" else v
               for v in VENUES]  # fmt: skip
    with pytest.raises(RegistryError, match="okx: monitor/engine/models has an exact model"):
        check_models(demoted, EXACT_MODELS)


# --- lookups ---------------------------------------------------------------------------


def test_transfers_without_an_executor_are_refused():
    with pytest.raises(RegistryError, match="newex: transfers declared without an executor"):
        _index([Venue("newex", "NewEx", ExchangeAdapter, ABOUT, transfers=True)])


def test_every_venue_lives_in_its_own_package_and_unknown_ids_get_the_generic_entry():
    for venue in VENUES:
        package = f"monitor.venues.{venue.adapter.__module__.split('.')[2]}."
        assert venue.adapter.__module__.startswith("monitor.venues."), venue.ccxt_id
        if venue.feed is not None:
            assert venue.feed.__module__.startswith(package), venue.ccxt_id
        if venue.execution is not None:
            assert venue.execution.executor.__module__.startswith(package), venue.ccxt_id
            assert venue.execution.read_permissions.__module__.startswith(package)
    assert len({v.ccxt_id for v in VENUES}) == len(VENUES)
    assert venue_for("kraken") is OTHER and type(adapter_for("kraken")) is ExchangeAdapter
    assert type(adapter_for("bingx")) is BingxAdapter
    first, second = adapter_for("binanceusdm"), adapter_for("binanceusdm")
    assert type(first) is BinanceUsdMAdapter and first is not second  # per-account state


def _account(exchange: str, *, keys: bool) -> SimpleNamespace:
    account = SimpleNamespace(
        exchange=exchange, api_key="k" if keys else None, secret="s" if keys else None
    )
    return SimpleNamespace(account=account, name="main", poll=None)


def test_only_a_venue_with_a_user_stream_opens_one_and_only_with_a_key():
    assert isinstance(user_stream_for(_account("binanceusdm", keys=True)), BinanceUserStream)
    assert user_stream_for(_account("binanceusdm", keys=False)) is None
    assert user_stream_for(_account("bybit", keys=True)) is None
    assert user_stream_for(_account("kraken", keys=True)) is None


# --- the configuration -----------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


RESERVE = "{from: spot, max_per_action: 500, max_per_day: 2000}"


def test_reserve_on_a_venue_without_transfers_is_refused_at_its_key_and_line(tmp_path):
    path = _write(
        tmp_path,
        f"""accounts:
  - name: main
    exchange: binanceusdm
    actions: {{mode: auto, reserve: {RESERVE}}}
  - name: bx
    exchange: bingx
    actions:
      reserve: {RESERVE}
""",
    )
    load_config(path)  # the file alone is valid
    with pytest.raises(ConfigError) as info:
        load_config(path, venues=lacks)
    (issue,) = info.value.errors  # a dry run that would draw on a reserve it cannot reach
    assert (issue.path, issue.line) == ("accounts[1].actions.reserve", 8)
    assert issue.message.startswith("bingx: transfers not available")


def test_automatic_actions_on_a_venue_that_cannot_execute_are_refused(tmp_path):
    path = _write(
        tmp_path,
        """accounts:
  - name: bx
    exchange: bingx
    actions: {mode: confirm}
  - name: paper
    exchange: bingx
    actions: {mode: dry_run}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, venues=lacks)
    (issue,) = info.value.errors
    assert (issue.path, issue.line) == ("accounts[0].actions.mode", 4)
    assert issue.message.startswith("bingx: automatic actions not available (mode confirm)")


def test_an_inherited_setting_is_placed_at_the_global_key_naming_the_account(tmp_path):
    path = _write(
        tmp_path,
        f"""actions:
  mode: auto
  reserve: {RESERVE}
accounts:
  - name: main
    exchange: binanceusdm
  - name: mx
    exchange: mexc
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, venues=lacks)
    found = {(i.path, i.line): i.message for i in info.value.errors}
    assert set(found) == {("actions.mode", 2), ("actions.reserve", 3)}
    assert found["actions.mode", 2].startswith("mexc: automatic actions not available")
    assert found["actions.reserve", 3].endswith("(account 'mx' inherits it)")


def test_nothing_is_refused_when_actions_are_off(tmp_path):
    path = _write(
        tmp_path,
        f"""accounts:
  - name: bx
    exchange: bingx
    actions: {{mode: "off", reserve: {RESERVE}}}
""",
    )
    assert load_config(path, venues=lacks).accounts[0].exchange == "bingx"


def test_the_example_configuration_asks_nothing_its_venues_lack(monkeypatch):
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.setenv(name, "x")
    assert load_config(ROOT / "config.example.yaml", venues=lacks).accounts


def test_the_cli_and_the_daemon_reload_refuse_it_without_a_traceback(tmp_path, capsys):
    path = _write(
        tmp_path, "accounts:\n  - name: kr\n    exchange: kraken\n    actions: {mode: auto}\n"
    )
    with pytest.raises(SystemExit) as info:
        main(["status", "--config", str(path)])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert "accounts[0].actions.mode: kraken: automatic actions not available" in err
    assert "(config.yaml:4)" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="kraken: automatic actions not available"):
        _load_usable(path)


# --- what is printed ---------------------------------------------------------------------


def test_the_readme_exchange_table_is_the_registry_s():
    text = README.read_text()
    section = text[text.index("\n## Exchanges\n") :]
    table = re.search(r"^\| exchange \(ccxt id\).*?(?=\n\n)", section, re.S | re.M)
    assert table is not None
    assert table.group(0) + "\n" == markdown(), "regenerate: marginwatch venues --markdown"


def test_the_screen_lists_every_venue_within_80_columns(capsys):
    assert main(["venues"]) == 0
    out = capsys.readouterr().out
    assert out == screen()
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = {line.split()[0]: line.split()[1:] for line in lines[1 : len(VENUES) + 2]}
    assert rows["binanceusdm"] == ["exact", "websocket", "user", "stream", "yes", "transfers"]
    assert rows["okx"] == ["exact", "websocket", "polled", "yes", "transfers"]
    assert rows["weex"] == ["generic", "ccxt", "poll", "polled", "dry", "run", "only", "no"]
    assert rows["(any"][:2] == ["other)", "generic"]
