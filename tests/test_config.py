"""The YAML configuration layer: what loads, and exactly how each mistake is reported."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from monitor.config import (
    AccountConfig,
    Config,
    ConfigError,
    LevelThresholds,
    LogConfig,
    Secret,
    Thresholds,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"

MINIMAL_ACCOUNTS = """\
accounts:
  - name: main
    exchange: bybit
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results must not depend on the systemd variables of whoever runs the tests."""
    for name in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).splitlines()


# --- valid configurations -------------------------------------------------------------------


def test_full_config_loads_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: /srv/marginwatch
        log:
          level: DEBUG
          format: json
        thresholds:
          cross: {warn: 0.45, critical: 0.7, distance_warn: 0.2, distance_critical: 0.09}
          isolated: {warn: 0.55, critical: 0.85, distance_warn: 0.12, distance_critical: 0.04}
        accounts:
          - name: main
            exchange: binanceusdm
            api_key: key-1
            secret: secret-1
            sandbox: true
            rest_url: http://127.0.0.1:8080
            ws_url: wss://stream.local:8443/
          - name: okx.hedge_2
            exchange: okx
            api_key: key-2
            secret: secret-2
            password: pass-2
          - name: hl
            exchange: hyperliquid
            wallet_address: "0xabc"
        """,
    )

    config = load_config(path)

    assert config.state_dir == Path("/srv/marginwatch")
    assert config.log == LogConfig(level="DEBUG", format="json")
    assert config.thresholds == Thresholds(
        cross=LevelThresholds(warn=0.45, critical=0.7, distance_warn=0.2, distance_critical=0.09),
        isolated=LevelThresholds(
            warn=0.55, critical=0.85, distance_warn=0.12, distance_critical=0.04
        ),
    )
    main, okx, hl = config.accounts
    assert (main.name, main.exchange, main.sandbox) == ("main", "binanceusdm", True)
    assert (main.api_key, main.secret, main.password) == (Secret("key-1"), Secret("secret-1"), None)
    assert main.rest_url == "http://127.0.0.1:8080"
    assert main.ws_url == "wss://stream.local:8443"  # trailing slash dropped: a bare origin
    assert okx.password == Secret("pass-2")
    assert okx.sandbox is False
    assert (hl.wallet_address, hl.api_key, hl.secret) == ("0xabc", None, None)
    assert config.thresholds_for("hl") == config.thresholds


def test_defaults_apply_when_optional_sections_are_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write(tmp_path, MINIMAL_ACCOUNTS))
    assert config.state_dir == Path("state")
    assert config.log == LogConfig(level="INFO", format="plain")
    assert config.thresholds.cross == LevelThresholds(
        warn=0.50, critical=0.75, distance_warn=0.15, distance_critical=0.08
    )
    assert config.thresholds.isolated == LevelThresholds(
        warn=0.60, critical=0.80, distance_warn=0.10, distance_critical=0.05
    )

    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/marginwatch:/var/lib/other")
    assert load_config(write(tmp_path, MINIMAL_ACCOUNTS)).state_dir == Path("/var/lib/marginwatch")


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "example-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "example-secret")

    config = load_config(EXAMPLE)

    first = config.accounts[0]
    assert first.exchange == "binanceusdm"
    assert (first.api_key, first.secret) == (Secret("example-key"), Secret("example-secret"))
    assert config.state_dir == Path("/var/lib/marginwatch")
    assert config.thresholds_for(first.name).cross.warn == 0.40


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = {
        *Config.model_fields,
        *LogConfig.model_fields,
        *Thresholds.model_fields,
        *LevelThresholds.model_fields,
        *AccountConfig.model_fields,
        "api_key_file",
        "secret_file",
        "password_file",
    }
    undocumented = [key for key in keys if not re.search(rf"^[\s#-]*{key}:", text, re.M)]
    assert undocumented == []


def test_example_commented_accounts_are_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bybit/okx/hyperliquid examples, all uncommented at once, validate together
    (tests/test_config_example.py checks every commented block on its own)."""
    head, accounts = EXAMPLE.read_text(encoding="utf-8").split("\naccounts:\n")
    accounts = re.sub(r"^  # (-|  )", r"  \1", accounts, flags=re.M)
    uncommented = f"{head}\naccounts:\n{accounts}"
    path = write(tmp_path, uncommented)
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "OKX_API_KEY", "OKX_API_SECRET"):
        monkeypatch.setenv(name, f"{name}-value")
    monkeypatch.setenv("OKX_PASSPHRASE", "passphrase")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "bybit_api_key").write_text("bybit-key\n")
    (credentials / "bybit_secret").write_text("bybit-secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))

    config = load_config(path)

    exchanges = [account.exchange for account in config.accounts]
    assert exchanges == ["binanceusdm", "bybit", "okx", "hyperliquid"]
    _, bybit, okx, hyperliquid = config.accounts
    assert bybit.secret == Secret("bybit-secret")
    assert okx.password == Secret("passphrase")
    assert hyperliquid.wallet_address is not None
    assert hyperliquid.api_key is None


# --- error reporting ------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_one_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        log:
          level: INFO
          format: plain
        accounts:
          - name: main
            exchange: bybit
            api_secret: s
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert str(info.value) == (
        "accounts[0].api_secret: unknown key; did you mean 'secret'? (config.yaml:7)"
    )
    (issue,) = info.value.errors
    assert (issue.path, issue.line, issue.file) == ("accounts[0].api_secret", 7, "config.yaml")


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + "    colour: blue\n")
    (error,) = load_errors(path)
    assert error.startswith("accounts[0].colour: unknown key; allowed keys: name, exchange, ")
    assert "wallet_address" in error
    assert "secret_file" in error
    assert error.endswith("(config.yaml:4)")


def test_all_errors_are_reported_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MW_TEST_UNSET", raising=False)
    path = write(
        tmp_path,
        """\
        log:
          level: LOUD
        accounts:
          - name: main
            exchange: binanceusd
            api_key: ${MW_TEST_UNSET}
            secret: s
          - name: main
            exchange: bybit
            api_key: k
            sandbx: true
            thresholds:
              cross:
                warn: 1.5
        """,
    )

    errors = load_errors(path)

    assert sorted(errors) == sorted(
        [
            "log.level: must be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (config.yaml:2)",
            "accounts[0].exchange: unknown ccxt exchange id 'binanceusd'; "
            "did you mean 'binanceusdm'? (config.yaml:5)",
            "accounts[0].api_key: environment variable MW_TEST_UNSET is not set (config.yaml:6)",
            "accounts[1].name: duplicate account name 'main'; already used by accounts[0] "
            "(config.yaml:8)",
            "accounts[1].secret: required when api_key is set; give both, or neither to "
            "monitor read-only (config.yaml:8)",
            "accounts[1].sandbx: unknown key; did you mean 'sandbox'? (config.yaml:11)",
            "accounts[1].thresholds.cross.warn: must be > 0 and < 1 (config.yaml:14)",
        ]
    )
    lines = [int(re.search(r":(\d+)\)$", error)[1]) for error in errors]
    assert lines == sorted(lines), "errors are listed in file order"


def test_threshold_ordering_is_enforced(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        thresholds:
          cross:
            warn: 0.8
          isolated:
            distance_warn: 0.04
        accounts:
          - {name: main, exchange: bybit}
          - {name: other, exchange: okx, thresholds: {isolated: {warn: 0.7}}}
        """,
    )
    # Exactly these two: accounts inheriting the broken globals must not repeat them.
    assert load_errors(path) == [
        "thresholds.cross: warn (0.8) < critical (0.75) < imminent (0.95) is required: "
        "the margin ratio rises toward liquidation (config.yaml:2)",
        "thresholds.isolated: distance_warn (0.04) > distance_critical (0.05) > "
        "distance_imminent (0.01) is required: the distance shrinks toward liquidation "
        "(config.yaml:4)",
    ]


@pytest.mark.parametrize("value", ["0", "1", "-0.2", "1.5", ".nan", "high"])
def test_threshold_values_must_be_open_fractions(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"thresholds:\n  isolated:\n    critical: {value}\n" + MINIMAL_ACCOUNTS)
    (error,) = load_errors(path)
    assert error.startswith("thresholds.isolated.critical: must be ")
    assert error.endswith("(config.yaml:3)")


def test_account_threshold_override_merges_key_by_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        thresholds:
          cross: {warn: 0.45}
          isolated: {critical: 0.9}
        accounts:
          - name: tuned
            exchange: bybit
            thresholds:
              cross: {critical: 0.7, distance_critical: 0.05}
          - name: inherits
            exchange: okx
        """,
    )

    config = load_config(path)

    assert config.thresholds.cross == LevelThresholds(
        warn=0.45, critical=0.75, distance_warn=0.15, distance_critical=0.08
    )
    assert config.thresholds.isolated == LevelThresholds(
        warn=0.60, critical=0.9, distance_warn=0.10, distance_critical=0.05
    )
    tuned = config.thresholds_for("tuned")
    assert tuned.cross == LevelThresholds(
        warn=0.45, critical=0.7, distance_warn=0.15, distance_critical=0.05
    )
    assert tuned.isolated == config.thresholds.isolated
    assert config.thresholds_for("inherits") == config.thresholds
    with pytest.raises(KeyError):
        config.thresholds_for("nobody")


def test_merged_override_is_checked_at_the_account(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        thresholds:
          cross: {critical: 0.6}
        accounts:
          - name: main
            exchange: bybit
            thresholds:
              cross: {warn: 0.65}
        """,
    )
    assert load_errors(path) == [
        "accounts[0].thresholds.cross: warn (0.65) < critical (0.6) < imminent (0.95) is "
        "required: the margin ratio rises toward liquidation (config.yaml:7)"
    ]


def test_thresholds_usable_without_a_config() -> None:
    partial = Thresholds.model_validate({"isolated": {"warn": 0.7}})
    assert partial.isolated == LevelThresholds(
        warn=0.7, critical=0.8, distance_warn=0.10, distance_critical=0.05
    )
    assert partial.cross == Thresholds().cross


def test_unknown_exchange_suggests_a_ccxt_id(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - name: a\n    exchange: binanceusd\n")
    assert load_errors(path) == [
        "accounts[0].exchange: unknown ccxt exchange id 'binanceusd'; did you mean "
        "'binanceusdm'? (config.yaml:3)"
    ]
    path = write(tmp_path, "accounts:\n  - name: a\n    exchange: zzqqxx\n")
    assert load_errors(path) == [
        "accounts[0].exchange: unknown ccxt exchange id 'zzqqxx'; see ccxt.exchanges for the "
        "valid ids (config.yaml:3)"
    ]


def test_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_STATE", "/data")
    monkeypatch.setenv("MW_NAME", "from-env")
    monkeypatch.setenv("MW_KEY", "key-from-env")
    monkeypatch.setenv("MW_SUFFIX", "!x")
    monkeypatch.setenv("MW_YAMLISH", "[1, {a: 2}]")
    path = write(
        tmp_path,
        """\
        state_dir: ${MW_STATE}/sub
        accounts:
          - name: ${MW_NAME}
            exchange: bybit
            api_key: ${MW_KEY}
            secret: pa$$word${MW_SUFFIX}
            password: pa$ss
            wallet_address: ${MW_YAMLISH} $${MW_KEY}
        """,
    )

    config = load_config(path)

    account = config.accounts[0]
    assert config.state_dir == Path("/data/sub")
    assert account.name == "from-env"
    assert isinstance(account.api_key, Secret)
    assert account.api_key.reveal() == "key-from-env"
    assert account.secret == Secret("pa$word!x")
    assert account.password == Secret("pa$ss")  # a lone $ needs no escaping
    # Substituted after parsing: YAML syntax in a value stays text; $$ is a literal $.
    assert account.wallet_address == "[1, {a: 2}] ${MW_KEY}"


def test_unset_env_variable_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MW_UNSET_KEY", raising=False)
    monkeypatch.delenv("MW_UNSET_EXCHANGE", raising=False)
    path = write(
        tmp_path,
        """\
        accounts:
          - name: main
            exchange: ${MW_UNSET_EXCHANGE}
            api_key: ${MW_UNSET_KEY}
            secret: s
            password: ab${oops
        """,
    )
    # One error per key: the raw ${...} left in place isn't also reported as a bad exchange.
    assert load_errors(path) == [
        "accounts[0].exchange: environment variable MW_UNSET_EXCHANGE is not set (config.yaml:3)",
        "accounts[0].api_key: environment variable MW_UNSET_KEY is not set (config.yaml:4)",
        "accounts[0].password: malformed ${...}: write ${NAME}, or $$ for a literal $ "
        "(config.yaml:6)",
    ]


def test_secret_files_resolve_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "api_key").write_text("file-key\n")
    (tmp_path / "secret").write_text("file-secret\r\n")
    absolute = tmp_path / "elsewhere"
    absolute.write_text("file-password")
    path = write(
        tmp_path,
        MINIMAL_ACCOUNTS
        + "    api_key_file: keys/api_key\n"
        + "    secret_file: secret\n"
        + f"    password_file: {absolute}\n",
    )

    account = load_config(path).accounts[0]

    assert account.api_key == Secret("file-key")
    assert account.secret == Secret("file-secret")
    assert account.password == Secret("file-password")


def test_secret_files_resolve_under_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "api_key").write_text("systemd-key\n")
    (credentials / "secret").write_text("systemd-secret\n")
    (tmp_path / "api_key").write_text("wrong-key\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    path = write(
        tmp_path, MINIMAL_ACCOUNTS + "    api_key_file: api_key\n    secret_file: secret\n"
    )

    account = load_config(path).accounts[0]

    assert account.api_key == Secret("systemd-key")
    assert account.secret == Secret("systemd-secret")


def test_unreadable_secret_file_names_key_line_and_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + "    api_key: k\n    secret_file: missing\n")
    # Only this error: the unread secret doesn't also count as "api_key without secret".
    assert load_errors(path) == [
        f"accounts[0].secret_file: cannot read {tmp_path / 'missing'}: No such file or "
        "directory (config.yaml:5)"
    ]

    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/marginwatch.service")
    assert load_errors(path) == [
        "accounts[0].secret_file: cannot read /run/credentials/marginwatch.service/missing: "
        "No such file or directory (config.yaml:5)"
    ]

    (tmp_path / "empty").write_text("\n")
    path = write(tmp_path, MINIMAL_ACCOUNTS + "    api_key: k\n    secret_file: /dev/null\n")
    assert load_errors(path) == ["accounts[0].secret_file: /dev/null is empty (config.yaml:5)"]


def test_secret_and_secret_file_together_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    path = write(
        tmp_path, MINIMAL_ACCOUNTS + "    api_key: k\n    secret: inline\n    secret_file: secret\n"
    )
    assert load_errors(path) == [
        "accounts[0].secret_file: cannot be combined with secret; set only one (config.yaml:6)"
    ]


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (
            "    api_key: k\n",
            "accounts[0].secret: required when api_key is set; give both, or neither to "
            "monitor read-only (config.yaml:2)",
        ),
        (
            "    secret: s\n",
            "accounts[0].api_key: required when secret is set; give both, or neither to "
            "monitor read-only (config.yaml:2)",
        ),
        (
            "    password: p\n",
            "accounts[0].password: only used together with api_key and secret (config.yaml:4)",
        ),
    ],
)
def test_credentials_must_be_complete(tmp_path: Path, credentials: str, expected: str) -> None:
    """A missing key is reported at the line of the account that should hold it."""
    assert load_errors(write(tmp_path, MINIMAL_ACCOUNTS + credentials)) == [expected]


def test_read_only_account_needs_no_credentials(tmp_path: Path) -> None:
    path = write(
        tmp_path, "accounts:\n  - {name: hl, exchange: hyperliquid, wallet_address: '0x1'}\n"
    )
    account = load_config(path).accounts[0]
    assert (account.api_key, account.secret, account.password) == (None, None, None)


def test_secrets_never_appear_in_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_SECRET", "env-secret-9f3a")
    (tmp_path / "password").write_text("file-password-77c1\n")
    path = write(
        tmp_path,
        MINIMAL_ACCOUNTS
        + "    api_key: inline-key-51de\n    secret: ${MW_SECRET}\n    password_file: password\n",
    )
    values = ("inline-key-51de", "env-secret-9f3a", "file-password-77c1")

    config = load_config(path)
    account = config.accounts[0]
    outputs = [
        repr(config),
        str(config),
        repr(account),
        str(account),
        config.model_dump_json(),
        str(config.model_dump()),
    ]
    for text in outputs:
        assert not any(value in text for value in values), text
    assert [account.api_key.reveal(), account.secret.reveal(), account.password.reveal()] == [
        *values
    ]

    # Errors about secret keys, or in accounts holding secrets, don't echo them either.
    broken = write(
        tmp_path,
        """\
        accounts:
          - name: main
            exchange: bybitt
            api_key: inline-key-51de
            secret: ${MW_SECRET}
            password: [file-password-77c1]
            api_secret: env-secret-9f3a
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(broken)
    assert len(info.value.errors) == 3
    for text in (str(info.value), repr(info.value), repr(info.value.errors)):
        assert not any(value in text for value in values), text


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "log:\n  level: INFO\n   format: plain\naccounts: []\n")
    (error,) = load_errors(path)
    # libyaml says "in this context", PyYAML's own parser "here": either is the problem
    assert error.startswith("invalid YAML: mapping values are not allowed ")
    assert error.endswith("(config.yaml:3)")


def test_yaml_syntax_error_does_not_quote_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + '    secret: "unterminated-s3cret\n')
    (error,) = load_errors(path)
    assert error.startswith("invalid YAML: ")
    assert "unterminated-s3cret" not in error


def test_duplicate_account_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        accounts:
          - {name: a, exchange: bybit}
          - {name: b, exchange: okx}
          - {name: a, exchange: okx}
        """,
    )
    assert load_errors(path) == [
        "accounts[2].name: duplicate account name 'a'; already used by accounts[0] (config.yaml:4)"
    ]


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + "    exchange: okx\n")
    assert load_errors(path) == [
        "accounts[0].exchange: duplicate key; remove one, else the last wins (config.yaml:4)"
    ]


@pytest.mark.parametrize(
    ("key", "url", "problem"),
    [
        ("rest_url", "http://127.0.0.1:8080/fapi", "must not have a path"),
        ("rest_url", "https://api.local?x=1", "must not have a query or fragment"),
        ("rest_url", "ftp://127.0.0.1", "scheme must be http or https"),
        ("rest_url", "http://:8080", "has no host"),
        ("rest_url", "http://127.0.0.1:99999", "has an invalid port"),
        ("rest_url", "http://user:pw@127.0.0.1", "must not contain a user or password"),
        ("ws_url", "http://127.0.0.1:8081", "scheme must be ws or wss"),
        ("ws_url", "wss://stream.local/ws", "must not have a path"),
    ],
)
def test_endpoint_urls_must_be_bare_origins(
    tmp_path: Path, key: str, url: str, problem: str
) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + f"    {key}: {url}\n")
    (error,) = load_errors(path)
    assert error.startswith(f"accounts[0].{key}: {problem}; expected ")
    assert error.endswith("(config.yaml:4)")


@pytest.mark.parametrize("name", ["main account", "ünïcode", "a/b", ""])
def test_account_name_charset(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"accounts:\n  - name: '{name}'\n    exchange: bybit\n")
    (error,) = load_errors(path)
    assert error.startswith("accounts[0].name: must ")
    assert error.endswith("(config.yaml:2)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty; it must define at least 'accounts' (config.yaml)"),
        (
            "# only comments\n",
            "the file is empty; it must define at least 'accounts' (config.yaml)",
        ),
        (
            "- name: main\n",
            "the top level must be a mapping of settings (state_dir, log, thresholds, accounts) "
            "(config.yaml:1)",
        ),
        ("# header\nlog: {level: INFO}\n", "accounts: required key is missing (config.yaml:2)"),
        ("accounts: []\n", "accounts: must list at least one account (config.yaml:1)"),
        ("accounts:\n  - bybit\n", "accounts[0]: must be a mapping (config.yaml:2)"),
    ],
)
def test_document_shape_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert load_errors(write(tmp_path, text)) == [expected]


def test_missing_config_file(tmp_path: Path) -> None:
    assert load_errors(tmp_path / "absent.yaml") == [
        f"cannot read {tmp_path / 'absent.yaml'}: No such file or directory (absent.yaml)"
    ]


# --- Secret ---------------------------------------------------------------------------------


def test_secret_masks_itself_and_compares_by_value() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2")
    assert secret != Secret("hunter3")
    assert secret != "hunter2"
    assert len({secret, Secret("hunter2")}) == 1
    with pytest.raises(TypeError):
        Secret(42)  # type: ignore[arg-type]


def test_secret_as_pydantic_field() -> None:
    account = AccountConfig(name="a", exchange="bybit", api_key="k", secret=Secret("s"))
    assert account.api_key == Secret("k")
    assert account.secret == Secret("s")
    assert account.model_dump()["api_key"] == "***"
    assert '"secret":"***"' in account.model_dump_json()


# --- bounds: size, alias expansion, nesting, the number of problems shown -------------------

BILLION_LAUGHS = """\
accounts: &a [{name: lol, exchange: x}, {name: lol, exchange: x}, {name: lol, exchange: x}]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
"""Under 1 KB; expanded, 16 x 10^8 values: 1.6 billion."""


def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_bound(tmp_path: Path) -> None:
    # Expanded sizes by hand: an account mapping is 1 + 2 keys + 2 values = 5 values;
    # a = 1 + 3 x 5 = 16; b = 1 + 10 x 16 = 161; c = 1,611; d = 16,111.
    # Running count: root 1; "accounts" 1 + a 16 = 18; "b" 1 + 161 = 180; "c" 1 + 1,611
    # = 1,792; "d" 1 + 16,111 = 17,904; "e" and its list 2 = 17,906; then 16,111 per *d:
    # after 5 aliases 98,461, after the 6th 114,572 > 100,000: line 5, alias *d.
    path = write(tmp_path, BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 1024
    (error,) = load_errors(path)
    assert error.startswith("the document grows past 100,000 values at alias *d;")
    assert "billion laughs" in error and error.endswith("(config.yaml:5)")


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + "loop: &x\n  - a\n  - *x\n")
    (error,) = load_errors(path)
    assert error == "alias *x refers to a node that contains it, an endless loop (config.yaml:6)"


def test_deep_nesting_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + "deep: " + "[" * 200 + "]" * 200 + "\n")
    (error,) = load_errors(path)
    assert error == "nested more than 64 levels deep (config.yaml:4)"


def test_a_file_over_one_mebibyte_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_ACCOUNTS + "# padding\n" * 110_000)
    assert path.stat().st_size > 1024 * 1024
    (error,) = load_errors(path)
    assert error == f"{path} is larger than 1 MiB, the limit for a configuration file (config.yaml)"


def test_many_unknown_keys_show_the_first_50_in_file_order_and_count_the_rest(
    tmp_path: Path,
) -> None:
    keys = "".join(f"    zz{i}: 1\n" for i in range(40_000))
    path = write(tmp_path, MINIMAL_ACCOUNTS + keys)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 51 and lines[-1] == "... and 39,950 more problems"
    assert lines[0].startswith("accounts[0].zz0: unknown key; allowed keys: ")
    assert lines[0].endswith("(config.yaml:4)") and lines[49].endswith("(config.yaml:53)")
    assert info.value.more == 39_950


def test_a_document_past_the_value_bound_is_refused_without_aliases(tmp_path: Path) -> None:
    # 60,000 keys with their values are 120,000 values: past 100,000 at key 49,998
    # (root 1 + accounts key, list, mapping, 2 x 2 keys/values = 8 before them; 8 + 2 x
    # 49,996 = 100,000; the next key, zz49996 on line 49,996 + 4, crosses)
    keys = "".join(f"    zz{i}: 1\n" for i in range(60_000))
    path = write(tmp_path, MINIMAL_ACCOUNTS + keys)
    (error,) = load_errors(path)
    assert error.startswith("the document has more than 100,000 values (keys, scalars, lists)")
    assert error.endswith("(config.yaml:50000)")
