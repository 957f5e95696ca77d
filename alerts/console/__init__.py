"""Telegram console: commands from allow-listed chats to the running daemon."""

from alerts.console.console import Console

__all__ = ["Console"]
