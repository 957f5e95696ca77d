"""The shape of a marginwatch configuration and the rules a valid one obeys.

Pure validation, no file or environment reads except the state directory default: the loader
resolves `${VAR}` and `*_file` first, so a Config built in code obeys the same rules as one
read from YAML.

Checks that span several keys run alongside pydantic's own (see `_validate_alongside`), so
every problem in a file is reported at once rather than one layer per attempt.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.config.secrets import Secret

SECRET_KEYS = ("api_key", "secret", "password", "private_key")
"""Account keys holding credentials; the loader also accepts a `<key>_file` twin for each."""

_Model = TypeVar("_Model", bound=BaseModel)


def _fraction(value: float) -> float:
    if not 0 < value < 1:  # also rejects NaN
        raise PydanticCustomError("fraction", "must be > 0 and < 1")
    return value


Fraction = Annotated[float, AfterValidator(_fraction)]

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _account_name(value: str) -> str:
    if not _ACCOUNT_NAME.fullmatch(value):
        raise PydanticCustomError(
            "account_name",
            "must use only letters, digits, '_', '.' and '-' (it names logs, alerts and state)",
        )
    return value


def _ccxt_exchange(value: str) -> str:
    import ccxt  # here, not at module level: ccxt is heavy and only this check needs it

    if value in ccxt.exchanges:
        return value
    close = get_close_matches(value.lower(), ccxt.exchanges, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "see ccxt.exchanges for the valid ids"
    raise PydanticCustomError("unknown_exchange", f"unknown ccxt exchange id {value!r}; {hint}")


def _origin(schemes: tuple[str, str], example: str) -> AfterValidator:
    """Validator for a bare scheme://host[:port], the part the exchange client swaps out.

    A path would be silently dropped by that swap (every endpoint keeps its own path), so
    it's rejected rather than ignored. The result is normalised to have no trailing slash.
    """

    def check(value: str) -> str:
        parts = urlsplit(value)
        problem = None
        if parts.scheme not in schemes:
            problem = f"scheme must be {' or '.join(schemes)}"
        elif not parts.hostname:
            problem = "has no host"
        elif parts.username is not None:
            problem = "must not contain a user or password"
        elif parts.path not in ("", "/"):
            problem = "must not have a path"
        elif parts.query or parts.fragment:
            problem = "must not have a query or fragment"
        else:
            try:
                parts.port  # noqa: B018 - parsing the port is the check
            except ValueError:
                problem = "has an invalid port"
        if problem:
            raise PydanticCustomError(
                "origin", f"{problem}; expected {schemes[0]}://host[:port], e.g. {example}"
            )
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    return AfterValidator(check)


HttpOrigin = Annotated[str, _origin(("http", "https"), "http://127.0.0.1:8080")]
WsOrigin = Annotated[str, _origin(("ws", "wss"), "ws://127.0.0.1:8081")]


def _default_state_dir() -> Path:
    """systemd's StateDirectory= exports STATE_DIRECTORY (colon-separated if it lists several)."""
    configured = os.environ.get("STATE_DIRECTORY")
    return Path(configured.split(":")[0]) if configured else Path("state")


class _Frozen(BaseModel):
    """Unknown keys are errors, so a typo can't silently fall back to a default; frozen,
    because one Config is shared by every monitoring task."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LogConfig(_Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["plain", "json"] = "plain"


class DaemonConfig(_Frozen):
    """How often `marginwatch run` reads each account and when it calls itself blind.

    The defaults keep a Binance account with keys under 6 request weight per minute (its
    user data stream carries every change; REST reconciles every `reconcile_interval`),
    one without a live stream near 60, while positions are never older than the stream,
    or than `poll_interval` seconds without one; mark prices arrive by push.
    """

    poll_interval: Annotated[float, Field(ge=1.0, le=3600.0)] = 10.0
    poll_jitter: Annotated[float, Field(ge=0.0, le=60.0)] = 1.0
    tiers_refresh: Annotated[float, Field(ge=60.0)] = 4 * 3600.0
    markets_refresh: Annotated[float, Field(ge=600.0)] = 24 * 3600.0
    feed_stale_after: Annotated[float, Field(gt=0.0, le=600.0)] = 10.0
    account_stale_after: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0
    request_timeout: Annotated[float, Field(gt=0.0, le=120.0)] = 10.0
    reconcile_interval: Annotated[float, Field(ge=1.0, le=3600.0)] = 120.0
    """REST cadence of an account whose user data stream keeps it current (Binance
    USD-M with keys): the stream carries every change, REST only reconciles."""
    request_budget: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    """Share of a venue's per-IP request-weight limit (Binance: 2,400 a minute) that all
    accounts on one host may use together; past it, reads wait for the next minute."""
    heartbeat_url: Secret | None = None
    """A push monitor's URL (healthchecks.io, Uptime Kuma, a cron monitor): fetched with
    GET every `heartbeat_interval` while the daemon is healthy, so the monitor pages
    you when marginwatch dies, hangs or goes blind. A secret: it is never logged."""
    heartbeat_fail_url: Secret | None = None
    """Fetched instead while unhealthy, to page at once rather than after the monitor's
    grace period: healthchecks.io takes the ping URL + "/fail", Uptime Kuma the push URL
    with "?status=down". Null = say nothing while unhealthy (silence pages later)."""
    heartbeat_interval: Annotated[float, Field(ge=1.0, le=3600.0)] = 60.0

    @field_validator("heartbeat_url", "heartbeat_fail_url")
    @classmethod
    def _http_url(cls, url: Secret | None) -> Secret | None:
        if url is not None and urlsplit(url.reveal()).scheme not in ("http", "https"):
            raise PydanticCustomError("url_scheme", "must be an http:// or https:// URL")
        return url


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _seconds(value: Any) -> Any:
    """`90`, `"90s"`, `"15m"`, `"4h"`, `"1d"` -> seconds; anything else is left to fail."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise PydanticCustomError(
                "duration", "must be a duration like 30s, 15m, 4h or a number of seconds"
            )
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0.0)]


class PerLevel(_Frozen):
    """One duration per alert level."""

    warn: Duration
    critical: Duration
    imminent: Duration


class AlertsConfig(_Frozen):
    """When a level becomes a message, and how often it is repeated.

    Repeats shorten as liquidation nears; `for` delays firing until a level has held that
    long (0 = at once); `group_wait` gathers one account's changes into one message.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    for_: PerLevel = Field(PerLevel(warn=0.0, critical=0.0, imminent=0.0), alias="for")
    repeat: PerLevel = PerLevel(warn=4 * 3600.0, critical=900.0, imminent=120.0)
    group_wait: Duration = 2.0
    resolved: bool = True
    daily_summary: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None
    """UTC time of day for a summary of every account, e.g. "08:00"; null = none."""
    defense_target_distance: Fraction | None = None
    """The liquidation distance the suggested defenses (transfer, add, reduce) bring a
    target back to; null = each account's `actions.isolated` / `actions.cross`
    `target_distance`, so the advice is the plan auto mode would carry out."""
    defense_target_ratio: Fraction | None = None
    """Optionally also a margin ratio the advice must reach (both are then met)."""
    expire_after: Duration = 6 * 3600.0
    """An undelivered notification older than this is dropped (and the drop logged)."""


class TelegramChat(_Frozen):
    chat_id: int
    accounts: tuple[str, ...] | None = None
    """Accounts this chat hears about; null = all."""


class TelegramAccess(_Frozen):
    """How to reach the bot: all `marginwatch telegram setup` needs to find chat ids."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bot_token: Secret
    api_url: HttpOrigin | None = None
    """A self-hosted Bot API server (scheme://host[:port]); null = Telegram's own."""


def _some_chats(chats: tuple[TelegramChat, ...]) -> tuple[TelegramChat, ...]:
    if not chats:
        raise PydanticCustomError(
            "no_chats",
            "list at least one chat; `marginwatch telegram setup --config FILE` shows the "
            "ids of the chats that wrote to the bot",
        )
    return chats


class TelegramConfig(TelegramAccess):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chats: Annotated[tuple[TelegramChat, ...], AfterValidator(_some_chats)] = Field(
        (), validate_default=True
    )
    allowed_users: tuple[int, ...] = ()
    """User ids allowed to send commands (in the listed chats); empty = nobody."""
    commands: bool = True


class WebhookConfig(_Frozen):
    url: Annotated[str, Field(pattern=r"^https?://")]
    accounts: tuple[str, ...] | None = None


class AlertmanagerConfig(_Frozen):
    """Prometheus Alertmanager: one alert per target, so replicas' alerts deduplicate.

    Labels are identical on every replica (that is what Alertmanager deduplicates on):
    alertname, account, target, level, severity, exchange, instance. The replica's own
    name goes into an annotation, never a label.
    """

    url: Annotated[
        tuple[Annotated[str, Field(pattern=r"^https?://")], ...],
        BeforeValidator(lambda v: (v,) if isinstance(v, str) else v),
        Field(min_length=1),
    ]
    """Alertmanager's base URL, e.g. http://127.0.0.1:9093 (alerts go to /api/v2/alerts),
    or the list of every peer of an Alertmanager cluster: each gets every alert (the
    Prometheus convention), through its own queue, so one peer down delays no other."""
    instance: Annotated[str, Field(min_length=1)] = "marginwatch"
    """The `instance` label: the same on every replica of one HA pair."""
    replica: str | None = None
    """The `replica` annotation; null = this host's name."""
    labels: dict[str, str] = {}
    """Extra labels on every alert (e.g. team, env), for routing."""
    hold: Duration = 5 * 3600.0
    """A firing alert's endsAt: this long after it was said, unless said again or resolved
    first. Longer than the slowest repeat (warn, 4 h), so a quiet warning stays firing."""
    accounts: tuple[str, ...] | None = None


class NotifiersConfig(_Frozen):
    console: bool = True
    telegram: TelegramConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    alertmanager: AlertmanagerConfig | None = None


class IsolatedPolicy(_Frozen):
    """Defend an isolated position: add margin (from the available balance, else from the
    reserve) up to a budget per position; once the budget is spent, or with `contain`,
    close it reduce-only just before the exchange would liquidate it."""

    trigger: Literal["warn", "critical", "imminent"] = "warn"
    defense: Literal["add_margin", "contain"] = "add_margin"
    target_distance: Fraction = 0.15
    """Liquidation distance an add brings the position back to."""
    target_ratio: Fraction | None = None
    """Optionally also a margin ratio to reach (the add then meets both)."""
    max_add_per_action: Annotated[float, Field(gt=0)] = 1_000.0
    max_add_per_position: Annotated[float, Field(gt=0)] = 2_000.0
    """Margin added to one position in all, per rolling day: the extra risk you accept.
    Both caps are USD values: a coin-margined position's margin converts at the mark."""
    close_before: Fraction = 0.03
    """The move allowed between deciding and the exchange acting. Close in full,
    reduce-only, once the distance falls below twice this and no margin can be added
    (the close then still has this move to land in): the liquidation fee and the margin
    left are kept. A price gap larger than that within one tick can still beat it: keep
    it above the gaps you expect."""

    @model_validator(mode="after")
    def _close_short_of_target(self) -> Self:
        if self.close_before >= self.target_distance:
            raise PydanticCustomError(
                "close_before",
                f"close_before ({self.close_before:g}) must be below target_distance "
                f"({self.target_distance:g}): the close is the last rung, after the adds",
            )
        return self


class CrossPolicy(_Frozen):
    """Defend a cross pool: collateral from the reserve first, then reduce-only cuts
    chosen by their exact effect on the pool's liquidation distance."""

    trigger: Literal["warn", "critical", "imminent"] = "critical"
    target_distance: Fraction = 0.12
    """The pool's liquidation distance, in the direction of the threat, to restore."""
    target_ratio: Fraction | None = None
    """Optionally also a margin ratio to reach (the defense then meets both)."""
    max_fraction_per_action: Annotated[float, Field(gt=0, le=1)] = 1.0
    """At most this share of a position per action (each cut is already the smallest
    that reaches the target; a smaller share spreads it over steps)."""
    order: Literal["effect", "smallest_losers", "mm_contribution", "worst_upnl", "priority"] = (
        "effect"
    )
    """Which positions to cut first (a cut that lowers the distance is never made)."""
    priority: tuple[str, ...] = ()
    """Symbols to cut first (ccxt unified form), with order: priority."""
    order_type: Literal["market", "limit_ioc"] = "market"
    max_slippage: Annotated[float, Field(gt=0, lt=0.2)] = 0.005


class ReserveConfig(_Frozen):
    """A wallet outside futures that defenses may draw on: the exchange's internal
    transfer into the futures wallet, capped per action and per rolling day."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Literal["spot", "funding"] = Field(alias="from")
    asset: Annotated[str, Field(min_length=1)] = "USDT"
    max_per_action: Annotated[float, Field(gt=0)]
    max_per_day: Annotated[float, Field(gt=0)]


class ActionCaps(_Frozen):
    """Hard limits on what auto-deleverage may do, whatever the policy asks for."""

    max_notional_per_action: Annotated[float, Field(gt=0)] = 50_000.0
    max_notional_per_hour: Annotated[float, Field(gt=0)] = 200_000.0
    max_notional_per_day: Annotated[float, Field(gt=0)] = 500_000.0
    max_actions_per_hour: Annotated[int, Field(ge=1)] = 10
    max_actions_per_day: Annotated[int, Field(ge=1)] = 40
    cooldown: Duration = 60.0
    """Per target, after a request the exchange refused (or a dry run): no new attempt
    within this time. A filled action is followed at once by a fresh read, and the next
    action waits only for that read."""


def _yaml_off(value: Any) -> Any:
    """YAML 1.1 reads a bare `off` as false; a user who wrote `mode: off` meant "off"."""
    return "off" if value is False else value


class ActionsConfig(_Frozen):
    """Auto-deleverage. Off unless asked: `dry_run` (the default) only says what it would do."""

    mode: Annotated[Literal["off", "dry_run", "confirm", "auto"], BeforeValidator(_yaml_off)] = (
        "dry_run"
    )
    paused: bool = False
    """Global kill switch; also the file `<state_dir>/PAUSE` and /pause in Telegram."""
    max_data_age: Duration = 5.0
    """Refuse to act on marks or positions older than this."""
    confirm_timeout: Duration = 60.0
    isolated: IsolatedPolicy = IsolatedPolicy()
    cross: CrossPolicy = CrossPolicy()
    reserve: ReserveConfig | None = None
    """Absent: no reserve; defenses use the futures wallet only."""
    caps: ActionCaps = ActionCaps()


def _deep_overlay(complete: Mapping[str, Any], partial: Any) -> Any:
    """A partial mapping merged key by key (recursively) over a complete one."""
    if not isinstance(partial, Mapping):
        return partial
    merged = dict(complete)
    for key, value in partial.items():
        base = complete.get(key)
        merged[key] = _deep_overlay(base, value) if isinstance(base, Mapping) else value
    return merged


class MetricsConfig(_Frozen):
    """Prometheus metrics; off unless a port is given, and on loopback by default."""

    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    host: str = "127.0.0.1"


class LevelThresholds(_Frozen):
    """Alert levels for one margin mode (cross or isolated).

    The margin ratio (maintenance margin / margin balance) rises to 1.0 at liquidation, so
    warn < critical < imminent. The liquidation distance (|mark - liq| / mark) shrinks
    toward 0 as danger grows, so distance_warn > distance_critical > distance_imminent.
    A level is entered when either figure reaches it, and left only when both are back
    past it by `clear_margin` (a fraction of the threshold) and by the absolute
    `clear_ratio` (ratio points) or `clear_distance` (distance points), whichever is
    wider: hysteresis, so a figure hovering at a threshold does not flap. The absolute
    margins matter at small distances, where 5 % of a 5 % threshold is a quarter of a
    point, less than one ordinary tick of an altcoin.
    """

    warn: Fraction
    critical: Fraction
    imminent: Fraction = 0.95
    distance_warn: Fraction
    distance_critical: Fraction
    distance_imminent: Fraction = 0.01
    clear_margin: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.05
    clear_ratio: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.02
    """Ratio points; never more than half a level's own threshold, so a level set near
    0 can still clear."""
    clear_distance: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.02
    """Distance points (0.02 = 2 points of the price)."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        problems = []
        if not self.warn < self.critical < self.imminent:
            problems.append(
                f"warn ({self.warn}) < critical ({self.critical}) < imminent "
                f"({self.imminent}) is required: the margin ratio rises toward liquidation"
            )
        if not self.distance_warn > self.distance_critical > self.distance_imminent:
            problems.append(
                f"distance_warn ({self.distance_warn}) > distance_critical "
                f"({self.distance_critical}) > distance_imminent ({self.distance_imminent}) "
                "is required: the distance shrinks toward liquidation"
            )
        if problems:
            raise PydanticCustomError("threshold_order", "; ".join(problems))
        return self


_DEFAULT_LEVELS: dict[str, LevelThresholds] = {
    "cross": LevelThresholds(warn=0.50, critical=0.75, distance_warn=0.15, distance_critical=0.08),
    "isolated": LevelThresholds(
        warn=0.60, critical=0.80, distance_warn=0.10, distance_critical=0.05
    ),
}


def _overlay(levels: Mapping[str, LevelThresholds], partial: Any) -> Any:
    """Merge a partial thresholds mapping key by key over complete levels.

    Anything that isn't a mapping, and unknown levels, pass through untouched for
    validation to reject with the right path.
    """
    if not isinstance(partial, Mapping):
        return partial
    merged = dict(partial)
    for name, complete in levels.items():
        given = partial.get(name, {})
        if isinstance(given, Mapping):
            merged[name] = {**complete.model_dump(), **given}
    return merged


class Thresholds(_Frozen):
    """Both margin modes' levels; any key left out takes its built-in default."""

    cross: LevelThresholds = _DEFAULT_LEVELS["cross"]
    isolated: LevelThresholds = _DEFAULT_LEVELS["isolated"]

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        return _overlay(_DEFAULT_LEVELS, data)


class AccountConfig(_Frozen):
    """One exchange account to watch.

    Credentials are optional as a set: none means read-only monitoring (wallet_address or
    public data), but a key without its secret can't sign anything and is an error.
    `thresholds` are the effective ones: inside a Config, the global section with this
    account's override on top.
    """

    name: Annotated[str, AfterValidator(_account_name)]
    exchange: Annotated[str, AfterValidator(_ccxt_exchange)]
    api_key: Secret | None = None
    secret: Secret | None = None
    password: Secret | None = None
    private_key: Secret | None = None
    """Hyperliquid: the private key of an agent (API) wallet that `wallet_address`
    approved. It signs orders and margin changes and can never withdraw; the main
    wallet's own key is refused for actions."""
    wallet_address: Annotated[str, Field(min_length=1)] | None = None
    sandbox: bool = False
    rest_url: HttpOrigin | None = None
    ws_url: WsOrigin | None = None
    thresholds: Thresholds = Thresholds()
    actions: ActionsConfig = ActionsConfig()

    @model_validator(mode="wrap")
    @classmethod
    def _credentials_paired(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return _validate_alongside(data, handler, _credential_issues(data), cls.__name__)


class Config(_Frozen):
    state_dir: Path = Field(default_factory=_default_state_dir)
    log: LogConfig = LogConfig()
    daemon: DaemonConfig = DaemonConfig()
    metrics: MetricsConfig = MetricsConfig()
    alerts: AlertsConfig = AlertsConfig()
    notifiers: NotifiersConfig = NotifiersConfig()
    actions: ActionsConfig = ActionsConfig()
    thresholds: Thresholds = Thresholds()
    accounts: tuple[AccountConfig, ...]

    @field_validator("accounts")
    @classmethod
    def _not_empty(cls, accounts: tuple[AccountConfig, ...]) -> tuple[AccountConfig, ...]:
        # Not Field(min_length=1): that also fires, misleadingly, when every account is invalid.
        if not accounts:
            raise PydanticCustomError("no_accounts", "must list at least one account")
        return accounts

    @model_validator(mode="before")
    @classmethod
    def _inherit_thresholds(cls, data: Any) -> Any:
        """Overlay each account's partial override on the global thresholds before validation.

        The merged result then goes through the normal rules, so a bad combination is
        reported at the account's own keys. If the global section is itself invalid it
        reports its own errors, and accounts build on the built-in defaults instead of
        repeating them.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("accounts"), list | tuple):
            return data
        try:
            inherited = Thresholds.model_validate(data.get("thresholds", {}))
        except ValidationError:
            inherited = Thresholds()
        levels = {"cross": inherited.cross, "isolated": inherited.isolated}
        try:
            actions = ActionsConfig.model_validate(data.get("actions", {}))
        except ValidationError:
            actions = ActionsConfig()
        actions_data = actions.model_dump(by_alias=True)
        accounts = [
            {
                **account,
                "thresholds": _overlay(levels, account.get("thresholds", {})),
                "actions": _deep_overlay(actions_data, account.get("actions", {})),
            }
            if isinstance(account, Mapping)
            else account
            for account in data["accounts"]
        ]
        return {**data, "accounts": accounts}

    @model_validator(mode="wrap")
    @classmethod
    def _names_unique(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return _validate_alongside(data, handler, _duplicate_name_issues(data), cls.__name__)

    @model_validator(mode="wrap")
    @classmethod
    def _targets_clear_triggers(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        config = handler(data)
        issues = _target_issues(data, config)
        if issues:
            raise ValidationError.from_exception_data(cls.__name__, issues)
        return config

    def account(self, name: str) -> AccountConfig:
        """The account called `name`; KeyError if there is none."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    def thresholds_for(self, account_name: str) -> Thresholds:
        """Effective thresholds of one account: global defaults merged with its override."""
        return self.account(account_name).thresholds


def _credential_issues(data: Any) -> list[InitErrorDetails]:
    """api_key and secret go together; password (OKX passphrase) only adds to them."""
    if not isinstance(data, Mapping):
        return []
    given = {key for key in SECRET_KEYS if data.get(key) is not None}
    issues = []
    for key, other in (("secret", "api_key"), ("api_key", "secret")):
        if other in given and key not in given:
            issues.append(
                _issue(
                    (key,),
                    f"required when {other} is set; give both, or neither to monitor read-only",
                )
            )
    if given == {"password"}:
        issues.append(_issue(("password",), "only used together with api_key and secret"))
    if "private_key" in given and not data.get("wallet_address"):
        issues.append(
            _issue(
                ("wallet_address",),
                "required when private_key is set: the address of the main wallet that "
                "approved this agent (API) wallet",
            )
        )
    return issues


def _duplicate_name_issues(data: Any) -> list[InitErrorDetails]:
    """Flag each repeat at its own position, naming where the name was first used.

    Reads the raw input so the check doesn't wait for every account to be valid.
    """
    accounts = data.get("accounts") if isinstance(data, Mapping) else None
    if not isinstance(accounts, list | tuple):
        return []
    first_use: dict[str, int] = {}
    issues = []
    for index, account in enumerate(accounts):
        name = (
            account.get("name") if isinstance(account, Mapping) else getattr(account, "name", None)
        )
        if not isinstance(name, str):
            continue
        if name in first_use:
            issues.append(
                _issue(
                    ("accounts", index, "name"),
                    f"duplicate account name {name!r}; already used by accounts[{first_use[name]}]",
                )
            )
        else:
            first_use[name] = index
    return issues


def _written(data: Any, *locs: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The first of `locs` the user wrote (an account's own key before the global
    one); None when none was written (the default applies)."""
    for loc in locs:
        node = data
        for part in loc:
            listed = isinstance(node, list | tuple) and isinstance(part, int) and part < len(node)
            if not (listed or (isinstance(node, Mapping) and part in node)):
                break
            node = node[part]
        else:
            return loc
    return None


def _path(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _target_issues(data: Any, config: Config) -> list[InitErrorDetails]:
    """Each defense target must lie beyond the point where its trigger level clears.

    A level fires at its threshold and is held until the figure is back past it by the
    clear margin; a defense aimed short of that point leaves the level firing, so the
    defense acts again and again (or, if the target is already met, never acts at all).
    The error names the target key and the threshold key, each where it is written.
    """
    # Imported here: the configuration's documents (monitor.config.document) are read by
    # the simulator too, which must not load the monitor's engine.
    from monitor.engine.levels import Level, keeping

    issues: dict[tuple[tuple[str | int, ...], str], InitErrorDetails] = {}
    for i, account in enumerate(config.accounts):
        aims = [
            (mode, policy.trigger, policy.target_distance, policy.target_ratio,
             ("accounts", i, "actions", mode), ("actions", mode))
            for mode, policy in (("isolated", account.actions.isolated),
                                 ("cross", account.actions.cross))
        ]  # fmt: skip
        advice = config.alerts
        aims += [
            (mode, Level.CRITICAL, advice.defense_target_distance, advice.defense_target_ratio,
             ("alerts",), ("alerts",))
            for mode in ("isolated", "cross")
        ]  # fmt: skip
        for mode, trigger, distance, ratio, own, shared in aims:
            limits = getattr(account.thresholds, mode)
            held = keeping(Level(trigger), limits)
            prefix = "defense_" if own == ("alerts",) else ""
            trigger_at = None if prefix else _written(data, (*own, "trigger"), (*shared, "trigger"))
            checks = [
                (distance, held.held_distance, "target_distance", f"distance_{trigger}", ">"),
                (ratio, held.held_ratio, "target_ratio", trigger, "<"),
            ]
            for value, bound, key, level_key, must in checks:
                if value is None or bound is None:
                    continue
                if (value > bound) if must == ">" else (value < bound):
                    continue
                default_at = ("thresholds", mode, level_key)
                threshold_at = _written(data, ("accounts", i, "thresholds", mode, level_key),
                                        default_at)  # fmt: skip
                target_at = _written(data, (*own, prefix + key), (*shared, prefix + key))
                loc = target_at or trigger_at or threshold_at or (*shared, prefix + key)
                related = threshold_at or trigger_at
                side = "above" if must == ">" else "below"
                figure = "distance" if must == ">" else "margin ratio"
                message = (
                    f"{_path((*shared, prefix + key))} {value:g} never clears the {trigger!r} "
                    f"level of {mode} targets: {_path(threshold_at or default_at)} = "
                    f"{getattr(limits, level_key):g} fires it and it holds until the {figure} "
                    f"is {side} {bound:.4g} (clear_margin included), so this defense would "
                    f"act again and again; set the target {side} {bound:.4g}, or change the "
                    "trigger or the threshold"
                )
                context = {"related": list(related)} if related and related != loc else None
                issues[(loc, message)] = InitErrorDetails(
                    type=PydanticCustomError("target_short_of_trigger", message, context),
                    loc=loc,
                    input=value,
                )
    return list(issues.values())


def _issue(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("config", message), loc=loc, input=None)


def _validate_alongside(
    data: Any,
    handler: Callable[[Any], _Model],
    issues: list[InitErrorDetails],
    title: str,
) -> _Model:
    """Run pydantic's validation and report `issues` together with whatever it finds.

    A plain after-validator would only run once every field is valid, hiding cross-key
    problems until the next attempt. Pydantic can rebuild only custom errors from parts,
    so its own errors are carried over as custom ones keeping their type and message.
    """
    try:
        model = handler(data)
    except ValidationError as exc:
        carried = [
            InitErrorDetails(
                type=PydanticCustomError(error["type"], error["msg"]),
                loc=error["loc"],
                input=error["input"],
            )
            for error in exc.errors()
        ]
        raise ValidationError.from_exception_data(title, [*carried, *issues]) from None
    if issues:
        raise ValidationError.from_exception_data(title, issues)
    return model
