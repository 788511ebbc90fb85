"""The coordinator's durable records: SQLModel tables, migrations, the audit chain.

`RunRecorder` (the ServerApp's round listener) lives in `fl_server.db.recorder`.
"""

from fl_server.db.engine import DATABASE_URL_ENV, Database, display_url, resolve_url
from fl_server.db.errors import ConflictError, DatabaseError, NotFoundError, RecordError

__all__ = [
    "DATABASE_URL_ENV",
    "ConflictError",
    "Database",
    "DatabaseError",
    "NotFoundError",
    "RecordError",
    "display_url",
    "resolve_url",
]
