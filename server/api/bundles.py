"""USB bundles from the console: write one onto a stick mounted on the server, and take
in what terminals returned on one. The directory is a path on the server machine (where
the stick is plugged in); only admins (not viewers) may use these. A county's account
writes bundles for its county's terminals and takes in their returns alone."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from server import bundles
from server.api.jsonio import json_response, read_json
from server.api.scope import county_of
from server.appkeys import CONFIG, DB, SERVER_ID, SIGNER, STORE
from server.errors import Unprocessable
from shared import bundle as b

log = logging.getLogger(__name__)
Directory = Annotated[str, Meta(min_length=2, max_length=4096, pattern="^/",
                               description="the stick's folder: an absolute path on the server")]


class BundleIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where to write, and for whom: a township, a list of terminals, every offline one
    (any combination; at least one)."""

    directory: Directory
    township: str | None = None
    terminals: list[Annotated[str, Meta(max_length=64)]] = []
    offline: bool = False
    # largest file on the stick, in bytes (rounded down to whole pieces); FAT32 needs < 4 GiB
    part_size: Annotated[int, Meta(ge=4096, lt=4 << 30)] = b.FAT32_PART


class ReturnsIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    directory: Directory


def _stick(request: web.Request, directory: str) -> Path:
    """The stick's folder, if it is an absolute path under one of the USB mount roots
    (`usb_mount_roots`): the console must not write or read anywhere else."""
    if not directory.startswith("/"):
        raise Unprocessable("give the stick's folder as an absolute path on the server, "
                            "e.g. /media/usb0", code="bad_directory")
    path = Path(os.path.normpath(directory))
    roots = [Path(os.path.normpath(r)) for r in request.app[CONFIG].usb_mount_roots]
    if not any(path != root and path.is_relative_to(root) for root in roots):
        raise Unprocessable(
            f"{path} is not under a USB mount root ({', '.join(map(str, roots))}); "
            "plug the stick in and use the folder it is mounted at", code="not_a_usb_folder")
    return path


async def write(request: web.Request) -> web.Response:
    body = await read_json(request, BundleIn)
    if body.township is None and not body.terminals and not body.offline:
        raise Unprocessable("choose a township, terminals, or offline ones", code="no_terminals")
    app = request.app
    try:
        report = await bundles.write_bundle(
            app[DB], app[STORE], app[SIGNER], app[CONFIG], app[SERVER_ID],
            _stick(request, body.directory), township=body.township,
            terminal_ids=tuple(body.terminals), offline=body.offline, part_limit=body.part_size,
            county_code=county_of(request))
    except bundles.BundleError as e:
        raise Unprocessable(str(e), code="bundle_refused") from None
    except OSError as e:
        log.warning("bundle write to %s failed", body.directory, exc_info=True)
        raise Unprocessable(f"the stick could not be written: {e.strerror or e}",
                            code="stick_unwritable") from None
    return json_response(report)


async def import_returns(request: web.Request) -> web.Response:
    body = await read_json(request, ReturnsIn)
    try:
        report = await bundles.import_returns(request.app[DB], _stick(request, body.directory),
                                              request.app[CONFIG].rollup_basis,
                                              county_of(request))
    except bundles.BundleError as e:
        raise Unprocessable(str(e), code="bundle_refused") from None
    except OSError as e:
        raise Unprocessable(f"the stick could not be read: {e.strerror or e}",
                            code="stick_unreadable") from None
    return json_response(report)
