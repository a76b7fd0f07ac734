"""Every code block of README.md runs as written, in order, in one temporary folder, on the embedded model.

- ```python blocks run in one namespace, so a block uses what the blocks before it made (``model``, ...).
- ```bash blocks run with ``bash -euo pipefail``, this environment's ``bin/`` first on PATH and HF_HUB_OFFLINE=1.

A marker comment on the line right before a block's opening fence changes how it runs:

- ``<!-- not-run: REASON -->``: the block is not run (set-up scripts, installs, the whole suite, a job too long for
  this test). The reason is required; where the same thing is tested elsewhere, it says where.
- ``<!-- background: URL -->``: a one-command bash block that keeps running (a server). It starts in the
  background; the blocks after it run once URL answers 200; at the end it gets SIGTERM and must exit with 0.

Port 8000 in bash blocks and background URLs becomes a free port, so a server already on 8000 does not matter.
Blocks in any other language are refused, so none escapes this test; the quick start stays short.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent  # the environment running the tests: its embedstack and python come first
LANGUAGES = ("python", "bash")
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*([a-z-]+):\s*(.*?)\s*-->\s*$")
MARKERS = ("not-run", "background")
README_PORT = re.compile(r"\b8000\b")  # the port the README's server examples use
QUICK_START_MAX_LINES = 40  # lines a reader sees: neither blank nor marker comments


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    line: int  # of the opening fence, counted from 1
    language: str
    code: str
    marker: str | None = None  # "not-run", "background" or None
    argument: str = ""  # the marker's reason or URL


def read_blocks(text: str) -> list[Block]:
    """The fenced code blocks of ``text``, each with the marker on the line before it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), None)
        assert end is not None, f"README.md line {index + 1}: the code block is never closed"
        marker = MARKER.match(lines[index - 1]) if index else None
        blocks.append(
            Block(
                line=index + 1,
                language=fence.group(1),
                code="\n".join(lines[index + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                argument=marker.group(2) if marker else "",
            )
        )
        index = end + 1
    return blocks


def environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1"}


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def run_python(block: Block, namespace: dict[str, object]) -> None:
    # Blank lines in front keep the line numbers of a traceback those of README.md.
    exec(compile("\n" * block.line + block.code, str(README), "exec"), namespace)


def run_bash(block: Block, port: str, folder: Path) -> None:
    code = README_PORT.sub(port, block.code)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(
            f"README.md line {block.line}: the bash block exited with {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )


def start_background(block: Block, port: str, folder: Path, log: IO[str]) -> subprocess.Popen[str]:
    commands = [line for line in block.code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 1, f"README.md line {block.line}: a background block is one command"
    argv = shlex.split(README_PORT.sub(port, commands[0]), comments=True)
    argv[0] = shutil.which(argv[0], path=environment()["PATH"]) or argv[0]
    process = subprocess.Popen(argv, cwd=folder, env=environment(), stdout=log, stderr=subprocess.STDOUT, text=True)
    url = README_PORT.sub(port, block.argument)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"README.md line {block.line}: {commands[0]!r} exited with {process.returncode} before {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return process
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"README.md line {block.line}: {url} did not answer within 120 s")


def stop_background(process: subprocess.Popen[str], log_path: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, f"{process.args} ended with {process.returncode}:\n{log_path.read_text()}"


@pytest.mark.slow
def test_the_readme_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    port = free_port()
    running: list[tuple[subprocess.Popen[str], Path]] = []
    try:
        for block in read_blocks(README.read_text(encoding="utf-8")):
            if block.marker == "not-run":
                continue
            if block.language == "python":
                run_python(block, namespace)
            elif block.marker == "background":
                log_path = tmp_path / f"background-{block.line}.log"
                with log_path.open("w", encoding="utf-8") as log:
                    running.append((start_background(block, port, tmp_path, log), log_path))
            else:
                run_bash(block, port, tmp_path)
        for process, log_path in running:  # SIGTERM must end a server cleanly
            stop_background(process, log_path)
    finally:
        for process, _ in running:  # after a failure, nothing is left running
            if process.poll() is None:
                process.kill()
                process.wait()


def test_every_block_is_python_or_bash_and_every_marker_is_complete():
    text = README.read_text(encoding="utf-8")
    blocks = read_blocks(text)
    assert blocks, "README.md has no code blocks"
    for block in blocks:
        where = f"README.md line {block.line}"
        assert block.language in LANGUAGES, f"{where}: a ```{block.language} block; this test runs only {LANGUAGES}"
        if block.marker == "not-run":
            assert block.argument, f"{where}: <!-- not-run: ... --> needs a reason"
        if block.marker == "background":
            assert block.language == "bash", f"{where}: only bash blocks run in the background"
            assert block.argument.startswith("http://"), f"{where}: <!-- background: URL --> needs the URL to wait for"
    lines = text.splitlines()
    for index, line in enumerate(lines):
        marker = MARKER.match(line)
        if marker is None:
            continue
        assert marker.group(1) in MARKERS, f"README.md line {index + 1}: unknown marker {marker.group(1)!r}"
        following = lines[index + 1] if index + 1 < len(lines) else ""
        assert FENCE.match(following), f"README.md line {index + 1}: a marker goes right before a code block's fence"


def test_the_quick_start_stays_short():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert section is not None, "README.md has no '## Quick start' section followed by another section"
    seen = [line for line in section.group(1).splitlines() if line.strip() and not MARKER.match(line)]
    assert len(seen) <= QUICK_START_MAX_LINES, f"the quick start is {len(seen)} lines; keep it to a screen"


def test_the_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "README.md links to no docs page"
    missing = [target for target in local if not (README.parent / target).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_block_reader_takes_each_marker_from_the_line_before_the_fence():
    text = "Intro.\n<!-- not-run: too slow -->\n```bash\nsleep 600\n```\n\n```python\nx = 1\n```\n"
    blocks = read_blocks(text)
    assert [(b.line, b.language, b.marker, b.argument) for b in blocks] == [
        (3, "bash", "not-run", "too slow"),
        (7, "python", None, ""),
    ]
    assert blocks[1].code == "x = 1\n"
