"""All SQL of the server. Each function takes a connection and runs inside the caller's
read or write (see server.db); handlers call them through `Database.read/write`."""

import uuid


def new_id() -> str:
    return uuid.uuid4().hex
