"""What kind of SPARQL request a text is, read before anything runs it.

The store's query path runs only the read-only forms; an update is refused with a message
saying where changes go instead. (pyoxigraph's query parser rejects update syntax anyway.)
"""

from __future__ import annotations

import re

from knowledge_graph.errors import KGError

READ_ONLY = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
UPDATES = ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH")

_PROLOGUE = re.compile(
    r"\A(?:\s+|#[^\n]*(?:\n|\Z)|PREFIX\s+[^\s:]*:\s*<[^<>\s]*>|BASE\s+<[^<>\s]*>)*",
    re.IGNORECASE,
)


def query_form(sparql: str) -> str:
    """SELECT, ASK, CONSTRUCT or DESCRIBE; a KGError naming the fix for anything else."""
    rest = sparql[_PROLOGUE.match(sparql).end() :]  # type: ignore[union-attr]
    word = re.match(r"[A-Za-z]+", rest)
    form = word.group(0).upper() if word else ""
    if form in READ_ONLY:
        return form
    if form in UPDATES:
        raise KGError(
            "only read-only queries (SELECT, ASK, CONSTRUCT, DESCRIBE) are allowed here; "
            "change the graph with `fl-kg add` / `fl-kg remove`"
        )
    shown = f"{rest[:20]!r}" if rest.strip() else "nothing"
    raise KGError(
        f"not a valid SPARQL query: expected SELECT, ASK, CONSTRUCT or DESCRIBE, found {shown}"
    )
