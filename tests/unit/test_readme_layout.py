"""The README's Layout block names every module of the package where it is, and nothing that is not.

Each entry of the block is a line indented by two spaces: `name.py` for a module of the package itself,
`folder/` for a package, whose description (the entry's lines) names each of its modules as a
word; `__init__` goes unnamed."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "procrun"


def layout_entries() -> dict[str, str]:
    """Entry name ("cli.py", "supervise/") -> its description, continuation lines included."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        entry = re.match(r"  (\S+)\s+(.*)", line)
        if entry:
            current = entry.group(1)
            entries[current] = entry.group(2)
        elif current is not None and line.strip():
            entries[current] += " " + line.strip()
    return entries


def test_every_module_is_named_in_its_entry():
    entries = layout_entries()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if path.stem == "__init__" or (len(rel.parts) == 1 and path.name == "__main__.py"):
            continue
        if len(rel.parts) == 1:
            if path.name not in entries:
                missing.append(str(rel))
        elif not re.search(rf"\b{path.stem}\b", entries.get(f"{rel.parts[0]}/", "")):
            missing.append(str(rel))
    assert missing == [], f"README Layout does not name {missing}"


def test_every_entry_exists():
    entries = layout_entries()
    assert entries, "no Layout block found"
    gone = [name for name in entries if not (PACKAGE / name.rstrip("/")).exists()]
    assert gone == [], f"README Layout names {gone}, which are not in procrun/"
