#!/usr/bin/env python3
"""Fails when the code leaves the rooms docs/ARCHITECTURE.md draws.

Crates: the table under "## Crates" in docs/ARCHITECTURE.md (one row per crate: the crates
it may depend on, and those it may use in its tests only) against the edges `cargo metadata`
reports. The page and the check are one source: an edge the table does not list fails CI
(scripts/test.sh runs this), and so does a crate without a row.

Modules: inside every crate, no module imports one that imports it back (a cycle of `use
crate::…`/`use super::…` between files; a file's `#[cfg(test)]` part is not counted).

    scripts/check-architecture.py              check the workspace
    scripts/check-architecture.py --self-test  show that each kind of breach fails
"""
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "ARCHITECTURE.md"


def crate_names(cell: str) -> set[str]:
    return set(re.findall(r"`(tirage-[a-z0-9-]+)`", cell))


def rules_from(doc: str) -> dict[str, tuple[set[str], set[str]]]:
    """crate -> (may depend on, in tests only), from the table after the `## Crates` heading."""
    section = doc.split("\n## Crates", 1)
    if len(section) < 2:
        raise SystemExit("check-architecture: docs/ARCHITECTURE.md has no '## Crates' section")
    rules = {}
    for line in section[1].splitlines():
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`tirage-"):
            continue
        (name,) = crate_names(cells[0])
        rules[name] = (crate_names(cells[2]), crate_names(cells[3]))
    return rules


def edges_from(metadata: dict) -> dict[str, list[tuple[str, str]]]:
    """crate -> [(dependency, kind)] for dependencies inside the workspace."""
    members = {p["name"] for p in metadata["packages"]}
    return {
        p["name"]: [(d["name"], d["kind"] or "normal") for d in p["dependencies"] if d["name"] in members]
        for p in metadata["packages"]
    }


def violations(rules, edges) -> list[str]:
    found = []
    for crate, deps in sorted(edges.items()):
        if crate not in rules:
            found.append(f"{crate}: no row in docs/ARCHITECTURE.md's crate table")
            continue
        allowed, tests_only = rules[crate]
        for dep, kind in deps:
            if dep in allowed or (kind == "dev" and dep in tests_only):
                continue
            where = "its tests" if kind == "dev" else "its code"
            found.append(f"{crate} -> {dep} ({kind}): the table does not let {where} depend on it")
    for crate in sorted(set(rules) - set(edges)):
        found.append(f"{crate}: a row in the table but no such workspace crate")
    return found


USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)


def module_files(src: Path) -> dict[tuple, Path]:
    """Module path (a tuple of names) -> its file, for one crate's src/."""
    mods = {}
    for f in src.rglob("*.rs"):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        mods[tuple(parts)] = f
    return mods


def split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p.strip()]


def imported(path: str, here: tuple, mods: dict) -> list[tuple]:
    """The modules of this crate a `use` path reaches (the deepest module on the path)."""
    braces = re.match(r"(.*?)::\{(.*)\}$", path.strip(), re.S)
    if braces:
        return [t for part in split_top(braces.group(2))
                for t in imported(f"{braces.group(1)}::{part.strip()}", here, mods)]
    segs = [s.strip() for s in path.split("::")]
    if segs[0] == "crate":
        cur, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        cur = list(here)
        while segs and segs[0] == "super":
            cur, segs = cur[:-1], segs[1:]
        if segs and segs[0] == "self":
            segs = segs[1:]
    else:
        return []
    for seg in segs:
        name = seg.split(" as ")[0].strip()
        if tuple(cur + [name]) not in mods:
            break
        cur.append(name)
    return [tuple(cur)]


def module_graph(mods: dict, read) -> dict[tuple, set]:
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        text = read(f).split("#[cfg(test)]", 1)[0]
        for path in USE.findall(text):
            graph[m].update(t for t in imported(path, m, mods) if t not in (m, ()))
    return graph


def cycles(graph: dict) -> list[list]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def module_violations(crate: str, src: Path) -> list[str]:
    mods = module_files(src)
    return [f"{crate}: modules import each other: {' <-> '.join('::'.join(m) for m in c)}"
            for c in cycles(module_graph(mods, Path.read_text))]


def self_test() -> None:
    rules = {"tirage-core": (set(), set()), "tirage-engine": ({"tirage-core"}, set()),
             "tirage-api": ({"tirage-core"}, {"tirage-testkit"}), "tirage-testkit": ({"tirage-core"}, set())}
    good = {"tirage-core": [], "tirage-engine": [("tirage-core", "normal")],
            "tirage-api": [("tirage-core", "normal"), ("tirage-testkit", "dev")],
            "tirage-testkit": [("tirage-core", "normal")]}
    assert violations(rules, good) == [], violations(rules, good)
    bad = dict(good, **{"tirage-engine": [("tirage-core", "normal"), ("tirage-api", "normal")]})
    assert any("tirage-engine -> tirage-api" in v for v in violations(rules, bad))
    test_kit_in_product = dict(good, **{"tirage-api": [("tirage-testkit", "normal")]})
    assert any("tirage-api -> tirage-testkit" in v for v in violations(rules, test_kit_in_product))
    unlisted = dict(good, **{"tirage-new": []})
    assert any("tirage-new: no row" in v for v in violations(rules, unlisted))
    table = "## Crates\n| crate | folder | may depend on | in tests only |\n|---|---|---|---|\n" \
            "| `tirage-core` | `core/` | — | — |\n| `tirage-api` | `api/` | `tirage-core` | `tirage-testkit` |\n## Next\n"
    assert rules_from("x\n" + table) == {"tirage-core": (set(), set()),
                                           "tirage-api": ({"tirage-core"}, {"tirage-testkit"})}
    files = {("context",): "use crate::gate::Gate;\n", ("gate",): "use crate::{cpu, context::Ctx};\n",
             ("cpu",): "", (): "mod context;\n", ("jobs",): "use super::cpu;\n#[cfg(test)]\nuse crate::jobs;\n"}
    mods = {m: m for m in files}
    graph = module_graph(mods, lambda m: files[m])
    assert graph[("gate",)] == {("cpu",), ("context",)}, graph
    assert cycles(graph) == [[("context",), ("gate",)]], cycles(graph)
    del files[("context",)]
    mods = {m: m for m in files}
    assert cycles(module_graph(mods, lambda m: files[m])) == []
    print("check-architecture: self-test passed")


def main() -> None:
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                         cwd=REPO, check=True, capture_output=True, text=True).stdout
    metadata = json.loads(out)
    found = violations(rules_from(DOC.read_text()), edges_from(metadata))
    for package in metadata["packages"]:
        src = Path(package["manifest_path"]).parent / "src"
        found += module_violations(package["name"], src)
    for v in found:
        print(f"check-architecture: {v}", file=sys.stderr)
    if found:
        raise SystemExit(1)
    print("check-architecture: every crate edge is one docs/ARCHITECTURE.md allows; "
          "no module imports one that imports it back")


if __name__ == "__main__":
    main()
