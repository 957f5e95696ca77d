"""YAML configuration: which accounts to watch, with what credentials, at what alert levels.

`load_config(path)` returns a frozen, validated `Config` or raises `ConfigError` listing
every problem as `key.path: message (file:line)`.
"""

from monitor.config.errors import ConfigError, ConfigIssue
from monitor.config.loader import load_config
from monitor.config.schema import (
    AccountConfig,
    Config,
    DaemonConfig,
    LevelThresholds,
    LogConfig,
    MetricsConfig,
    Thresholds,
)
from monitor.config.secrets import Secret

__all__ = [
    "AccountConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DaemonConfig",
    "LevelThresholds",
    "LogConfig",
    "MetricsConfig",
    "Secret",
    "Thresholds",
    "load_config",
]
