"""``yushan completion bash|zsh``: the generated script completes commands, flags and choices.

The script runs in a real bash: COMP_WORDS/COMP_CWORD are what bash sets when the user presses
TAB, and COMPREPLY is what it would offer.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cli.commands.completion import completion_script
from cli.main import build_full_parser


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "yushan.bash"
    path.write_text(completion_script(build_full_parser(), "bash"))
    return path


def offered(script: Path, *words: str) -> list[str]:
    words_list = " ".join(f'"{w}"' for w in words)
    program = (
        f"source {script}; COMP_WORDS=({words_list}); COMP_CWORD={len(words) - 1}; _yushan; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-c", program], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("yushan", "jo"), ["jobs"]),
        (("yushan", "jobs", "l"), ["list", "logs"]),
        (("yushan", "jobs", "list", "--st"), ["--status", "--start"]),
        (("yushan", "jobs", "list", "--status", "r"), ["running"]),
        (("yushan", "-o", ""), ["table", "wide", "json", "yaml"]),
        (("yushan", "serve", "--emb"), ["--embedded"]),
        (("yushan", "quota", "s"), ["set"]),
        (("yushan", "completion", ""), ["-h", "--help", "bash", "zsh"]),
    ],
)
def test_bash_offers_commands_flags_and_choices(
    script: Path, words: tuple[str, ...], expected: list[str]
) -> None:
    assert offered(script, *words) == expected


def test_zsh_uses_the_same_script_through_bashcompinit() -> None:
    parser = build_full_parser()
    zsh = completion_script(parser, "zsh")
    prelude = "autoload -U +X bashcompinit && bashcompinit\n"
    bash = completion_script(parser, "bash")
    assert zsh.startswith(prelude + "# yushan zsh completion")
    assert zsh.splitlines()[2:] == bash.splitlines()[1:]  # the same after the comment
