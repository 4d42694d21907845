"""Bad input ends in a problem with its place, exit code 2 and nothing written, within bounded
time and memory, on the real `stencil` command (dry run and real submit alike).

Each child runs under a 10 s timeout and an address-space limit of 500 MB (``RLIMIT_AS``), so a
manifest that made Stencil build a 100 MB prompt, expand an alias bomb (it once took 8.3 GB) or
loop for ever fails the test by a MemoryError traceback or a timeout instead of passing.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli import ROOT, stencil_env

LIMIT_S = 10
MEMORY_BYTES = 500 * 1024 * 1024


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def stencil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child limited to LIMIT_S seconds and MEMORY_BYTES of memory."""
    return subprocess.run(
        [sys.executable, "-m", "stencil", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        cwd=ROOT,
        preexec_fn=_cap_memory,
        check=False,
    )


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in stencil_env().items() if not k.startswith("STENCIL_")}
    env["STENCIL_DATA_DIR"] = str(home)
    env.update(extra)
    return env


def batches(env: dict[str, str]) -> list[dict[str, object]]:
    listed = stencil(env, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def stored_files(home: Path) -> list[Path]:
    output = home / "output"
    return [p for p in output.rglob("*") if p.is_file()] if output.exists() else []


def head(prompt: str = "Photo of {{ name }}", key: str = "{{ sku }}", extra: str = "") -> str:
    return (
        f"version: 1\nname: hostile\nkey: {json.dumps(key)}\n"
        f"template:\n  prompt: {json.dumps(prompt)}\n{extra}"
    )


ROWS = "rows:\n  - {sku: a, name: shirt}\n"


def _alias_bomb() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n" + head() + "rows:\n  - {sku: a, name: *i}\n"


def _deep_jsonl() -> str:
    return '{"sku": "a", "name": ' + "[" * 200_000 + "]" * 200_000 + "}\n"


@dataclass
class Case:
    """A manifest folder (file name -> text) and the words its one problem must contain."""

    files: dict[str, str]
    words: tuple[str, ...]
    manifest: str = "m.yaml"
    args: tuple[str, ...] = field(default=())


CASES = {
    "100MB prompt from a for loop": Case(
        {"m.yaml": head("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}") + ROWS},
        ("m.yaml", "row 0", "template.prompt", "renders to more than 131,072 characters"),
    ),
    "nested range loops that print nothing": Case(
        {
            "m.yaml": head(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
            )
            + ROWS
        },
        ("row 0", "template.prompt", "steps of work"),
    ),
    "YAML alias bomb": Case({"m.yaml": _alias_bomb()}, ("m.yaml", "row 5", "alias bomb")),
    "budget_usd given twice": Case(
        {"m.yaml": head(extra="budget_usd: 1\nbudget_usd: 500\n") + ROWS},
        ("row 7", "'budget_usd'", "duplicate key 'budget_usd' (first on line 6)"),
    ),
    "deeply nested YAML": Case(
        {"m.yaml": head() + "rows:\n  - {sku: a, name: " + "[" * 5000 + "]" * 5000 + "}\n"},
        ("m.yaml", "nesting is deeper than"),
    ),
    "duplicate key in a JSON row": Case(
        {"m.yaml": head() + "rows: rows.jsonl\n", "rows.jsonl": '{"sku": "a", "sku": "b"}\n'},
        ("rows.jsonl", "row 1", "duplicate key 'sku'"),
    ),
    "deeply nested JSON row": Case(
        {"m.yaml": head() + "rows: rows.jsonl\n", "rows.jsonl": _deep_jsonl()},
        ("rows.jsonl", "row 1", "nested too deeply"),
    ),
    "lone surrogate in a JSON row": Case(
        {
            "m.yaml": head() + "rows: rows.jsonl\n",
            "rows.jsonl": '{"sku": "a", "name": "\\ud800"}\n',
        },
        ("rows.jsonl", "row 1", "template.prompt", "lone surrogate"),
    ),
    "a column named like Stencil's own value": Case(
        {"p.csv": "key,prompt,row\na,hello,mine\n"}, ("p.csv", "row 2", "'row'", "rename"), "p.csv"
    ),
    "unknown model id": Case(
        {"m.yaml": head(extra="model: gemini-2.5-flash-imagee\n") + ROWS},
        ("'model'", "gemini-2.5-flash-imagee", "gemini-3-pro-image"),
    ),
    "budget of 1e13": Case(
        {"m.yaml": head(extra="budget_usd: 1.0e+13\n") + ROWS},
        ("'budget_usd'", "maximum of $100,000"),
    ),
    "output keys that are folders of each other": Case(
        {
            "m.yaml": head(extra="output: '{{ out }}'\n")
            + "rows:\n  - {sku: a, name: x, out: x}\n  - {sku: b, name: y, out: x/1.png}\n"
        },
        ("row 1", "'output'", "inside 'x'"),
    ),
    "output key ending in the sidecar suffix": Case(
        {"m.yaml": head(extra="output: 'out/{{ key }}.png.json'\n") + ROWS},
        ("row 0", "'output'", "sidecar"),
    ),
    "output key in _refs/": Case(
        {"m.yaml": head(extra="output: '_refs/{{ key }}.png'\n") + ROWS},
        ("row 0", "'output'", "'_refs/'"),
    ),
    "control characters in a key": Case(
        {"m.yaml": head() + 'rows:\n  - {sku: "a\\e]52;c;aGk=\\a", name: x}\n'},
        ("row 0", "'key'", "control characters", "\\x1b"),
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_a_problem_with_its_place(tmp_path: Path, case: Case) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for name, text in case.files.items():
        (folder / name).write_text(text, encoding="utf-8")
    env = clean_env(tmp_path / "home")
    manifest = str(folder / case.manifest)
    for args in (("--dry-run",), ()):
        result = stencil(env, "submit", manifest, *args, *case.args)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and "\x1b" not in result.stderr
        for words in case.words:
            assert words in result.stderr, (args, result.stderr[-2000:])
    assert batches(env) == []
    assert stored_files(tmp_path / "home") == []


def test_a_dry_run_prints_a_terminal_sequence_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    osc = "\x1b]0;owned\x07\x1b[2J\u202e"
    (folder / "m.yaml").write_text(
        head() + f"rows:\n  - {{sku: a, name: {json.dumps(osc)}}}\n", encoding="utf-8"
    )
    result = stencil(clean_env(tmp_path / "home"), "submit", str(folder / "m.yaml"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Photo of \\x1b]0;owned\\x07\\x1b[2J\\u202e" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\u202e" not in result.stdout
    as_json = stencil(
        clean_env(tmp_path / "home"), "submit", str(folder / "m.yaml"), "--dry-run", "--json"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert "\x1b" not in as_json.stdout and "\u202e" not in as_json.stdout
    assert json.loads(as_json.stdout)["samples"][0]["prompt"] == "Photo of " + osc


def test_postgres_limits_are_problems_not_sql_errors(tmp_path: Path, pg_url: str) -> None:
    env = clean_env(tmp_path / "home", STENCIL_DATABASE_URL=pg_url)
    upgraded = stencil(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "long.yaml").write_text(
        head().replace("name: hostile", "name: " + "n" * 300) + ROWS, encoding="utf-8"
    )
    (folder / "nul.yaml").write_text(head("a\x00b") + ROWS, encoding="utf-8")
    cases = {"long.yaml": ("'name'", "300 characters long; at most 200"),
             "nul.yaml": ("row 0", "'template.prompt'", "NUL character")}  # fmt: skip
    for name, words in cases.items():
        for args in (("--dry-run",), ()):
            result = stencil(env, "submit", str(folder / name), *args)
            assert result.returncode == 2, (name, args, result.stderr[-2000:])
            assert all(w in result.stderr for w in words), result.stderr[-2000:]
            for sql_sign in ("INSERT", "psycopg", "SQL", "Traceback"):
                assert sql_sign not in result.stderr
    assert batches(env) == []

    # A long CSV file name is only a derived name: it is cut to fit, and the submit succeeds.
    csv_name = "c" * 240 + ".csv"
    (folder / csv_name).write_text("key,prompt\na,hello\n", encoding="utf-8")
    result = stencil(env, "submit", str(folder / csv_name))
    assert result.returncode == 0, result.stderr[-2000:]
    [batch] = batches(env)
    assert batch["name"] == "c" * 197 + "..."


def test_the_memory_cap_is_real(tmp_path: Path) -> None:
    """The cap this suite relies on does stop a child that builds too much."""
    env = clean_env(tmp_path / "home")
    code = "x = bytearray(600 * 1024 * 1024)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        preexec_fn=_cap_memory,
        check=False,
    )
    assert result.returncode != 0 and "MemoryError" in result.stderr
