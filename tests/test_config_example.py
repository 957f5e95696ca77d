"""Every commented-out block of config.example.yaml is valid once uncommented as written.

The example promises "delete the leading '# ' of each of its lines (keep the
indentation)". This test does exactly that, mechanically, one block at a time (and each
block nested in it, inside its uncommented parent), and loads the result with the real
loader. It knows no block by name, so a block added later is checked the same way.

A commented block starts with a comment line whose text is YAML: a lower-case key
(`telegram:`, `rest_url: ...`) or a list item (`- name: ...`); it goes on over the comment
lines at the same '#' column whose text is indented deeper. Prose comments (capitalised
sentences) are not blocks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"
_COMMENT = re.compile(r"^(?P<indent> *)# (?P<text>.*)$")
_YAML_START = re.compile(r"^(?:[a-z_][a-z0-9_]*:(?:\s|$)|- )")
Block = tuple[int, int]
"""First line, one past the last line (0-based)."""


def commented_blocks(lines: list[str]) -> list[Block]:
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        start = _COMMENT.match(lines[index])
        if start is None or not _YAML_START.match(start["text"]):
            index += 1
            continue
        end = index + 1
        while end < len(lines):
            more = _COMMENT.match(lines[end])
            if more is None or more["indent"] != start["indent"]:
                break
            if len(more["text"]) - len(more["text"].lstrip(" ")) == 0:
                break  # same depth: the next block (or prose) begins
            end += 1
        blocks.append((index, end))
        index = end
    return blocks


def uncomment(lines: list[str], block: Block) -> list[str]:
    """Delete "# " right after each line's indentation, and nothing else."""
    first, end = block
    return [
        re.sub(r"^( *)# ", r"\1", line) if first <= n < end else line
        for n, line in enumerate(lines)
    ]


def variants(lines: list[str], depth: int = 0) -> list[tuple[str, list[str]]]:
    """(what was uncommented, the resulting lines) for every block and nested block."""
    found = []
    for first, end in commented_blocks(lines):
        opened = uncomment(lines, (first, end))
        label = f"line {first + 1}: {lines[first].strip()}"
        found.append((label, opened))
        if depth < 3:
            inner = [
                (f"{label} > {sub}", sub_lines)
                for sub, sub_lines in variants(opened, depth + 1)
                if _within(sub, first, end)
            ]
            found += inner
    return found


def _within(label: str, first: int, end: int) -> bool:
    line = int(label.split(":")[0].removeprefix("line "))
    return first < line <= end


def environment_for(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ${VAR} set, every *_file present in a credentials directory."""
    for name in set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    credentials = tmp_path / "credentials"
    credentials.mkdir(exist_ok=True)
    for name in set(re.findall(r"^[ #-]*\w+_file: (\S+)", text, re.M)):
        (credentials / name).write_text(f"{name}-secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))


LINES = EXAMPLE.read_text(encoding="utf-8").splitlines()
VARIANTS = variants(LINES)


def test_the_example_has_commented_blocks_to_check() -> None:
    starts = [LINES[first].strip() for first, _ in commented_blocks(LINES)]
    assert "# telegram:" in starts
    assert "# - name: bybit-unified" in starts
    assert "# rest_url: http://127.0.0.1:8080   # http or https, for REST endpoints" in starts


@pytest.mark.parametrize(("label", "lines"), VARIANTS, ids=[label for label, _ in VARIANTS])
def test_each_commented_block_validates_once_uncommented(
    label: str, lines: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "\n".join(lines) + "\n"
    environment_for(text, tmp_path, monkeypatch)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        pytest.fail(f"uncommenting {label} gives an invalid configuration:\n{exc}")


def test_the_telegram_block_uncommented_is_the_telegram_notifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = [b for b in commented_blocks(LINES) if LINES[b[0]].strip() == "# telegram:"]
    text = "\n".join(uncomment(LINES, block)) + "\n"
    environment_for(text, tmp_path, monkeypatch)
    (tmp_path / "config.yaml").write_text(text)
    telegram = load_config(tmp_path / "config.yaml").notifiers.telegram
    assert telegram is not None
    assert telegram.bot_token.reveal() == "telegram_bot_token-secret"
    assert [chat.chat_id for chat in telegram.chats] == [123456789]
