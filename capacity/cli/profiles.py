"""``capacity profiles`` and ``capacity validate``: what ships, and whether files are valid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.table import Table
from rich.text import Text

from capacity.cli.common import console, err_console, load, print_renderable, resolve_paths
from capacity.render.format import safe


def list_shipped(fmt: str) -> None:
    """Print the shipped profiles and overlays, one line each (or JSON / CSV rows)."""
    from capacity.profile.shipped import shipped

    items = shipped()
    rows = [{"name": s.name, "kind": s.kind, "description": s.description} for s in items]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=True) + "\n")
        return
    if fmt == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=["name", "kind", "description"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for kind in ("profile", "overlay"):
        group = [s for s in items if s.kind == kind]
        if group:
            grid.add_row(Text(f"{kind}s:", style="bold"), Text(""))
        for s in group:
            grid.add_row(Text(f"  {safe(s.name)}"), Text(safe(s.description)))
    print_renderable(console, grid)
    console.print(Text("Use a name where a path is expected (capacity ceiling web-research), "
                       "or copy one to edit: capacity init web-research", style="dim"))


def validate_files(paths: list[Path], merge: bool, overrides: list[str] | None) -> int:
    """Validate each file on its own (or the merged stack); one line per file; the exit
    code: 0 when all are valid, 2 otherwise."""
    import typer

    if not merge and sum(str(p) == "-" for p in paths) > 1:
        # Standard input is read once: a second '-' met an empty stream and was reported
        # as an empty profile.
        from capacity.cli.common import _fail

        raise _fail("'-' (standard input) given more than once; it can be read only once")
    stacks = [paths] if merge else [[p] for p in paths]
    failed = 0
    for stack in stacks:
        try:
            profile = load(stack, overrides)
        except typer.Exit:
            failed += 1  # the error line is already printed, naming file, line and key
            continue
        n_turns = sum(1 for _ in profile.all_turns())
        n_q = len(profile.quotas)
        where = " + ".join("<stdin>" if str(p) == "-" else str(p)  # as errors name it
                           for p in (resolve_paths(stack) if merge else stack))
        extra = "".join(
            f", {n} {what}{'s' * (n != 1)}" for n, what in (
                (len(profile.populations) + 1 if profile.populations else 0, "population"),
                (len(profile.deployments), "deployment"), (len(profile.routes), "route"))
            if n)
        console.print(Text(f"ok: {safe(where)}: {safe(profile.title)} ({n_turns} turn "
                           f"type{'s' * (n_turns != 1)}, {n_q} quota{'s' * (n_q != 1)}"
                           f"{extra})"), soft_wrap=True)
    if failed and len(stacks) > 1:
        err_console.print(Text(f"{failed} of {len(stacks)} files invalid"))
    return 2 if failed else 0
