"""The terminal daemon: every part started, run and stopped together.

    async with Terminal(config) as t:
        await t.wait_closed()      # or drive it: t.run_session(...), t.snapshot()

Background loops: sync (catalog, roster, downloads), heartbeat, outbox, the schedule
of catalog sessions, the scrub (cached files hashed again while idle), and the saving
of download progress. Each loop that talks to the server backs off with jitter when
the link fails and looks for the server again; a loop's unexpected failure goes to the
`Supervisor`. The control API's handlers live in `terminal.interface.controls`, the terminal's
condition in `terminal.interface.condition`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from shared.protocol import Heartbeat, SessionPlan
from shared.sqlite import Database
from shared.timeutil import to_db, utcnow
from terminal import constants as k
from terminal.config import TerminalConfig
from terminal.errors import ItemError, ServerRefused, ServerUnreachable, TerminalError
from terminal.interface import control as ctl
from terminal.interface.condition import Facts, assess
from terminal.interface.controls import Controls
from terminal.interface.status import (
    ItemStatus,
    NextSession,
    SessionStatus,
    SessionSummary,
    Snapshot,
    StatusServer,
)
from terminal.network import heartbeat
from terminal.network.backoff import Backoff
from terminal.network.bandwidth import RateLimiter
from terminal.network.discovery import Discovery
from terminal.network.enroll import rotate_if_due, stored_tls_pin, tls_fingerprint
from terminal.network.link import Link
from terminal.network.peers import PeerFetcher, PeerService
from terminal.network.trust import Trust
from terminal.playback.clock import Clock, MonotonicClock, WallClock
from terminal.playback.outbox import Delivery, Outbox
from terminal.playback.player import Player
from terminal.playback.sessions import SessionResult, SessionRunner, SessionSpec
from terminal.storage import db as q
from terminal.storage.cache import Cache
from terminal.storage.catalog import CatalogKeeper
from terminal.storage.downloader import Downloader
from terminal.storage.migrations import MIGRATIONS
from terminal.storage.scrub import Scrubber, shown_state
from terminal.storage.sync import VILLAGE_NAME, Syncer
from terminal.storage.usb import UsbReport
from terminal.storage.window import DownloadWindow
from terminal.supervisor import Supervisor

log = logging.getLogger(__name__)

SESSION_LATE = timedelta(hours=2)  # a scheduled session missed by more than this is not started
SCHEDULE_POLL = 30.0


def _trim_heap() -> None:
    """Hand freed memory back to the system (glibc keeps it in its arenas otherwise)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    event.clear()


class Terminal:
    """`wall_clock`, `monotonic` and `boot_id` stand in for the box's clocks (tests set a
    wrong wall clock, a clock step or a new boot through them)."""

    def __init__(
        self, config: TerminalConfig, *, player: Player | None = None,
        wall_clock: WallClock = utcnow, monotonic: MonotonicClock = time.monotonic,
        boot_id: str | None = None,
    ) -> None:
        # With no terminal id (never enrolled) the daemon still advertises the box and serves
        # its status; it trusts no server until enrollment, so it syncs nothing.
        self.config = config
        self.db = Database(config.db_path, MIGRATIONS, synchronous="FULL")
        self.clock = Clock(self.db, wall=wall_clock, monotonic=monotonic, boot_id=boot_id)
        self.trust = Trust(self.db)
        self.keeper = CatalogKeeper(self.db, self.trust, config.terminal_id)
        self.cache = Cache(self.db, config.cache_dir, quota=config.cache_quota_bytes,
                           min_free_bytes=config.min_free_bytes, clean_marker=config.clean_marker)
        self.outbox = Outbox(self.db, batch=config.outbox_batch, clock=self.clock,
                             retry_initial=config.held_retry_seconds,
                             retry_max=max(config.held_retry_seconds, k.HELD_RETRY_MAX))
        self.discovery: Discovery | None = None
        self.status_server: StatusServer | None = None
        self.http: aiohttp.ClientSession | None = None
        self.foreign_http: aiohttp.ClientSession | None = None
        self.link: Link | None = None
        self.syncer: Syncer | None = None
        self.scrubber = Scrubber(
            self.db, self.cache, sessions=self._planned_sessions, idle=lambda: not self.session_running,
            interval=config.scrub_interval, rate=config.scrub_rate_limit, poll=config.scrub_poll_seconds,
            lead=config.session_verify_lead, on_change=self.notify, on_bad=self.wake_sync,
        )
        self._player = player
        self._own_player = player is None
        self._runner: SessionRunner | None = None
        self._session_task: asyncio.Task[SessionResult] | None = None
        self.supervisor = Supervisor(pause=config.backoff_max)
        self._sync_wake = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self.last_delivery: Delivery | None = None
        self.peer_service: PeerService | None = None
        self.heartbeats = 0
        self.controls = Controls(self)
        self._last_title = ""
        self._last_result: SessionResult | None = None
        self._release: asyncio.Task[None] | None = None

    # --- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Terminal:
        try:
            await self.async_start()
        except BaseException:
            await self.async_close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.async_close()

    async def async_start(self, *, background: bool = True) -> None:
        c = self.config
        await self.db.async_open()
        await self.trust.async_load()
        await self.clock.async_load()
        stored = await self.db.read(partial(q.get_kv, key="terminal_token"))
        token = c.terminal_token or stored or ""
        await self.keeper.async_load()
        await self.cache.async_open()
        await SessionRunner.recover(self.db)
        timeout = aiohttp.ClientTimeout(total=None, connect=k.HTTP_CONNECT_TIMEOUT,
                                        sock_read=k.HTTP_READ_TIMEOUT)
        # Over https the server's certificate is pinned to the one enrollment named.
        pin = tls_fingerprint(await stored_tls_pin(self.db))
        connector = aiohttp.TCPConnector(ssl=pin) if pin is not None else None
        self.http = aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                          connector=connector)
        # a blob may be redirected to a media bucket or CDN: its certificate is checked
        # against the system's CAs, not the county server's pin
        self.foreign_http = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        if c.zeroconf and background:
            self.discovery = Discovery(interfaces=c.zeroconf_interfaces, terminal_id=c.terminal_id,
                                       village=c.village_code)
            await self.discovery.async_start()
        self.link = Link(self.http, self.db, self.trust, self.discovery, configured_url=c.server_url,
                         terminal_id=c.terminal_id, discovery_timeout=c.discovery_timeout,
                         token=token)
        limiter = RateLimiter(c.bandwidth_limit) if c.bandwidth_limit > 0 else None
        self.syncer = Syncer(self.db, self.keeper, self.cache, Downloader(
            self.http, limiter=limiter, progress=self._on_progress,
            progress_log_seconds=c.progress_log_seconds, foreign=self.foreign_http,
        ), DownloadWindow.parse(c.download_window, c.timezone), on_change=self._cache_changed)
        if not background:
            return
        peer_handler = None
        if c.peer_serving and c.terminal_id:
            self.peer_service = PeerService(
                self.db, self.cache, self.trust, lambda: self.session_running,
                max_uploads=c.peer_max_uploads, rate=c.peer_upload_limit)
            peer_handler = self.peer_service.handle
            self.syncer.peers = PeerFetcher(
                self.db, self.discovery.lan_peers if self.discovery is not None else None)
        self.status_server = StatusServer(self.snapshot, self.control, c.status_host, c.status_port,
                                          roster=self.roster, peer_handler=peer_handler)
        port = await self.status_server.async_start()
        log.info("status endpoint on %s:%d", c.status_host, port)
        if self.discovery is not None:
            await self.discovery.async_advertise(port)
        for loop in (self._sync_loop, self._heartbeat_loop, self._outbox_loop, self._schedule_loop,
                     self._scrub_loop, self._progress_loop):
            self.supervisor.spawn(loop)

    async def async_close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._session_task is not None and not self._session_task.done():
            self._session_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TerminalError):
                await self._session_task
        self.scrubber.close()
        await self.controls.async_close()
        await self.supervisor.async_close()
        if self._release is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._release
        if self._player is not None and self._own_player:
            await self._player.async_close()
        if self.status_server is not None:
            await self.status_server.async_close()
        if self.discovery is not None:
            await self.discovery.async_close()
        if self.http is not None:
            await self.http.close()
        if self.foreign_http is not None:
            await self.foreign_http.close()
        await self.cache.async_close()
        await self.db.async_close()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- change notification, for the progress display and tests -----------------------

    def notify(self) -> None:
        self._changed.set()

    def _cache_changed(self) -> None:
        self.scrubber.wake()  # a file just became ready: its next check is timed from now
        self.notify()

    def _on_progress(self, sha256: str, present: int, size: int) -> None:
        if self.syncer is not None:
            self.syncer.on_progress(sha256, present, size)
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], Any], timeout: float) -> None:
        """Wait until `predicate()` (sync or async) is true, re-checking on every change."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the condition did not become true in time")
            self._changed.clear()
            # changes wake us at once; the short cap covers state that changes without a signal
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await self._changed.wait()

    def wake_sync(self) -> None:
        self._sync_wake.set()

    def wake_outbox(self) -> None:
        self._outbox_wake.set()

    # --- loops ------------------------------------------------------------------------

    def _backoff(self) -> Backoff:
        return Backoff(self.config.backoff_initial, self.config.backoff_max)

    async def _sync_loop(self) -> None:
        assert self.link is not None and self.syncer is not None
        backoff = self._backoff()
        while True:
            delay = self.config.sync_interval
            try:
                client = await self.link.get()
                await self.syncer.cycle(client)
                backoff.reset()
                if self.syncer.retry_in is not None:  # a LAN peer is fetching an item
                    delay = min(delay, self.syncer.retry_in)
            except ServerUnreachable as e:
                self.link.lost(e)
                self.syncer.condition = self.link.problem or "server unreachable"
                delay = backoff.next_delay()
            except ServerRefused as e:
                log.error("the server refused: %s", e)
                self.syncer.condition = f"the server refused: {e}"
                delay = backoff.next_delay()
            except TerminalError as e:
                log.error("sync: %s", e)
                delay = backoff.next_delay()
            self.notify()
            await _wait(self._sync_wake, delay)

    async def _heartbeat_loop(self) -> None:
        assert self.link is not None
        backoff = self._backoff()
        interval = self.config.heartbeat_interval
        while True:
            delay = interval
            try:
                client = await self.link.get()
                beat = self._with_sharing(heartbeat.build(await self.snapshot(), self.clock.now()))
                sent = self.clock.monotonic()
                ack = await client.heartbeat(beat)
                await self.clock.async_confirm(ack.server_time, sent, self.clock.monotonic())
                self.heartbeats += 1
                every = timedelta(days=self.config.token_rotation_days)
                if self.config.terminal_id and not self.config.terminal_token and (
                    fresh := await rotate_if_due(self.db, client, every)
                ):
                    self.link.use_token(fresh)
                interval = delay = ack.heartbeat_interval_seconds or interval
                if self.keeper.catalog is None or ack.catalog_version > self.keeper.catalog.version:
                    self.wake_sync()
                backoff.reset()
            except ServerUnreachable as e:
                self.link.lost(e)
                delay = min(interval, backoff.next_delay())
            except ServerRefused as e:
                log.error("heartbeat refused: %s", e)
                delay = min(interval, backoff.next_delay())
            self.notify()
            await asyncio.sleep(delay)

    def _with_sharing(self, hb: Heartbeat) -> Heartbeat:
        """The heartbeat with what sharing between terminals adds to it."""
        syncer, port = self.syncer, self.status_server.port if self.status_server else 0
        if syncer is None:
            return hb
        return msgspec.structs.replace(
            hb, peer_port=port if self.peer_service is not None and port else None,
            bytes_from_server=syncer.bytes_from_server, bytes_from_peers=syncer.bytes_from_peers,
            bad_peers=sorted(syncer.peers.bad_peers) if syncer.peers else [],
            lan_peers=self.discovery.lan_peers() if self.discovery is not None else [])

    async def _outbox_loop(self) -> None:
        assert self.link is not None
        backoff = self._backoff()
        while True:
            delay = self.config.outbox_interval
            if await self.outbox.due():
                try:
                    client = await self.link.get()
                    self.last_delivery = await self.outbox.drain(client)
                    if self.last_delivery.sent or self.last_delivery.quarantined:
                        log.info("outbox: %d record(s) delivered in %d batch(es), %d held",
                                 self.last_delivery.sent, self.last_delivery.batches,
                                 self.last_delivery.quarantined)
                    backoff.reset()
                except ServerUnreachable as e:
                    self.link.lost(e)
                    delay = backoff.next_delay()
                except ServerRefused as e:
                    log.error("outbox refused: %s", e)
                    delay = backoff.next_delay()
                self.notify()
            if await self.outbox.held():  # refused records are offered again when their time comes
                delay = min(delay, max(0.05, self.outbox.retry_in()))
            await _wait(self._outbox_wake, delay)

    async def _schedule_loop(self) -> None:
        while True:
            delay = SCHEDULE_POLL
            catalog = self.keeper.catalog
            if catalog is not None and self.config.auto_start_sessions:
                now = utcnow()
                for plan in sorted(catalog.sessions, key=lambda s: s.starts_at):
                    if plan.starts_at > now:
                        delay = min(delay, (plan.starts_at - now).total_seconds())
                        continue
                    if now - plan.starts_at > SESSION_LATE or self.session_running:
                        continue
                    if await self.db.read(partial(q.session_ran, session_id=plan.session_id)):
                        continue
                    log.info("scheduled session %r is due", plan.title)
                    await self.start_session(SessionSpec(plan.title, list(plan.items), plan.session_id), [])
            await asyncio.sleep(max(0.05, delay))

    async def _scrub_loop(self) -> None:
        await self.scrubber.run()

    def _planned_sessions(self) -> list[SessionPlan]:
        return list(self.keeper.catalog.sessions) if self.keeper.catalog is not None else []

    async def _progress_loop(self) -> None:
        assert self.syncer is not None
        while True:
            await asyncio.sleep(k.PROGRESS_SAVE_SECONDS)
            await self.syncer.save_progress()

    # --- sessions ---------------------------------------------------------------------

    @property
    def session_running(self) -> bool:
        return self._session_task is not None and not self._session_task.done()

    async def session_runner(self) -> SessionRunner:
        if self._runner is None:
            if self._player is None:
                c = self.config
                outputs: tuple[str, ...] = (f"--aout={c.audio_output}",) if c.audio_output else ()
                if c.video_output and not c.headless:
                    outputs += (f"--vout={c.video_output}",)
                self._player = Player(headless=c.headless, rate=c.playback_rate, extra_args=outputs)
                await self._player.async_open()
            self._player.listeners.append(self.notify)
            self._runner = SessionRunner(
                self.db, self.cache, self._player, save_seconds=self.config.session_save_seconds,
                on_closed=self._session_closed, on_not_ready=lambda _sha: self.wake_sync(),
                clock=self.clock,
            )
        return self._runner

    def _session_closed(self) -> None:
        if self._runner is not None:
            self._last_result = self._runner.last
        if self._own_player and self._player is not None:
            # the player's libvlc child exits with the session, so the box idles at the
            # daemon's own size
            player, self._player, self._runner = self._player, None, None
            self._release = asyncio.create_task(self._release_player(player), name="terminal-release-player")
        self.wake_outbox()
        self.scrubber.wake()  # it gave way to the session
        self.notify()

    async def _release_player(self, player: Player) -> None:
        task = self._session_task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait({task})  # the session's last save first
        await player.async_close()
        await asyncio.to_thread(_trim_heap)

    async def start_session(
        self, spec: SessionSpec, attendee_refs: Sequence[str]
    ) -> asyncio.Task[SessionResult]:
        """Sign the attendees in and start playing; the task's result is the closed record."""
        if self.session_running:
            raise TerminalError("a session is already running")
        runner = await self.session_runner()
        attendees = await runner.sign_in(attendee_refs)
        if spec.session_id:
            now = to_db(utcnow())
            await self.db.write(lambda c: q.mark_session_ran(c, spec.session_id or "", now))
        self._last_title = spec.title
        self._session_task = asyncio.create_task(runner.run(spec, attendees), name="terminal-session")
        self.notify()
        return self._session_task

    async def run_session(self, spec: SessionSpec, attendee_refs: Sequence[str]) -> SessionResult:
        return await (await self.start_session(spec, attendee_refs))

    async def resolve_items(self, refs: Sequence[str]) -> list[str]:
        """The sha256 of each item named by its sha256, a unique prefix of it (6+ hex digits)
        or its exact title. Raises ItemError for a name that matches no item or several,
        or when none of the items is verified and ready to play."""
        rows = await self.db.read(q.items)
        found: list[str] = []
        for ref in (r.strip() for r in refs):
            low = ref.lower()
            hits = [r for r in rows if r.sha256 == low]
            if not hits and len(low) >= 6 and all(ch in "0123456789abcdef" for ch in low):
                hits = [r for r in rows if r.sha256.startswith(low)]
            if not hits:
                hits = [r for r in rows if r.title == ref]
            if not hits:
                raise ItemError(f"本机没有节目 {ref!r} / no item {ref!r} on this terminal "
                                "(give its sha256 or its exact title)")
            if len(hits) > 1:
                names = ", ".join(f"{r.sha256[:12]} {r.title}" for r in hits)
                raise ItemError(f"{ref!r} 指向多个节目 / names several items ({names}); "
                                "give more of the sha256")
            found.append(hits[0].sha256)
        ready = {r.sha256 for r in rows if r.state == "ready"}
        if found and not ready.intersection(found):
            raise ItemError("这些节目都还不能播放（未下载或未校验） / none of these items is "
                            "downloaded and verified yet: nothing would play")
        return found

    async def control(self, action: str, body: object) -> Any:
        """The local control API (`terminal.interface.controls.Controls.handle`)."""
        return await self.controls.handle(action, body)

    async def roster(self) -> ctl.RosterAnswer:
        return await self.controls.roster()

    @property
    def overlay_shown(self) -> bool:
        return self.controls.overlay_shown

    @property
    def runner(self) -> SessionRunner | None:
        return self._runner

    @property
    def player(self) -> Player | None:
        return self._player

    @property
    def session_task(self) -> asyncio.Task[SessionResult] | None:
        return self._session_task

    def session_for(self, session_id: str) -> SessionSpec:
        catalog = self.keeper.catalog
        for plan in catalog.sessions if catalog else []:
            if plan.session_id == session_id:
                return SessionSpec(plan.title, list(plan.items), plan.session_id)
        raise LookupError(f"no session {session_id} in the catalog")

    async def usb_exchange(self, stick: Path) -> UsbReport:
        """Take in what verifies from a USB stick and write this terminal's returns onto it
        (terminal/storage/usb.py); downloads of the same items wait meanwhile."""
        from terminal.storage.usb import UsbExchange

        async def state() -> Heartbeat:
            return heartbeat.build(await self.snapshot(), self.clock.now())

        exchange = UsbExchange(
            self.db, self.keeper, self.cache, self.config.terminal_id, state=state,
            busy=self.syncer.busy if self.syncer is not None else None,
            keep=self.syncer.upcoming_items if self.syncer is not None else None,
            progress=self._on_progress, clock=self.clock)
        report = await exchange.run(stick)
        if self.syncer is not None:  # the stick's progress is over; the database holds the truth
            for sha in [*report.imported, *report.missing, *report.damaged]:
                self.syncer.progress.pop(sha, None)
        self.notify()
        self.wake_sync()
        return report

    # --- status -----------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        rows, counts, refusal = await self.db.read(
            lambda c: (q.items(c), q.record_counts(c), q.held_refusal(c)))
        now = utcnow()
        usage = await self.cache.usage()
        progress = self.syncer.progress if self.syncer is not None else {}
        catalog = self.keeper.catalog
        stale = self.keeper.expired()
        window_open = await self.syncer.window_open() if self.syncer is not None else True
        session = None
        if self._runner is not None and self._runner.current is not None and self._player is not None:
            stats, spec = self._player.stats, self._runner.current
            playing = stats.sha256 if stats else None
            titles = {r.sha256: r.title for r in rows}
            session = SessionStatus(
                title=spec.title, session_id=spec.session_id,
                attendees=list(self._runner.attendees), playing=playing,
                position_seconds=stats.position_seconds if stats else 0.0, state=self._player.state,
                duration_seconds=self._player.duration,
                item_index=spec.items.index(playing) if playing in spec.items else 0,
                item_count=len(spec.items), item_title=titles.get(playing or "", ""),
                volume=self._player.volume,
            )
        link = "searching"
        if self.link is not None:
            link = "connected" if self.link.client is not None else (self.link.problem or "searching")
        ready = {r.sha256 for r in rows if r.state == "ready"}
        scheduled: list[NextSession] = []
        for plan in sorted(catalog.sessions if catalog else [], key=lambda p: p.starts_at):
            if await self.db.read(partial(q.session_ran, session_id=plan.session_id)):
                continue
            missing = sum(1 for sha in plan.items if sha not in ready)
            scheduled.append(NextSession(session_id=plan.session_id, title=plan.title,
                                         starts_at=to_db(plan.starts_at), items=list(plan.items),
                                         ready=missing == 0, missing=missing))
        late = to_db(utcnow() - SESSION_LATE)
        next_session = next((n for n in scheduled if n.starts_at >= late), None)
        last_session = None
        if (done := self._last_result) is not None:
            waiting = await self.db.read(partial(q.record, record_id=done.record_id))
            last_session = SessionSummary(
                record_id=done.record_id, title=self._last_title, attendees=list(done.attendees),
                watched_seconds=round(sum(done.watched.values()), 1), ended_at=to_db(done.ended_at),
                delivered=waiting is None, problem=done.problem,
            )
        village_name, members = await self.db.read(lambda c: (q.get_kv(c, VILLAGE_NAME), len(q.roster(c))))
        kinds = {i.sha256: (str(i.kind), i.duration_seconds) for i in catalog.items} if catalog else {}
        condition, problems = assess(Facts(
            enrolled=bool(self.config.terminal_id),
            syncer=self.syncer.condition if self.syncer is not None else "ok", stale=stale,
            has_catalog=catalog is not None, link=link, clock_confirmed=self.clock.confirmed(),
            held=counts["quarantined"], refusal=refusal or "",
        ))
        return Snapshot(
            terminal_id=self.config.terminal_id, village_code=self.config.village_code,
            software_version=k.SOFTWARE_VERSION, condition=condition,
            server_url=self.link.client.base_url if self.link and self.link.client else None,
            server_fingerprint=self.trust.fingerprint,
            catalog_version=catalog.version if catalog else None,
            catalog_expires_at=to_db(catalog.expires_at) if catalog else None, catalog_stale=stale,
            download_window=str(self.syncer.window) if self.syncer else "always", window_open=window_open,
            bandwidth_limit=self.config.bandwidth_limit, cache_bytes=usage.cache_bytes,
            cache_quota=usage.quota, disk_free=usage.disk_free, disk_total=usage.disk_total,
            items=[ItemStatus(
                sha256=r.sha256, title=r.title, size=r.size,
                state=shown_state(r, now, self.config.scrub_interval),
                bytes_present=progress.get(r.sha256, (r.bytes_present, 0))[0] if r.state == "downloading"
                else r.bytes_present,
                assigned=r.assigned, needed_by=r.needed_by, resumed_from=r.resumed_from, error=r.error,
                kind=kinds.get(r.sha256, ("", 0.0))[0], duration_seconds=kinds.get(r.sha256, ("", 0.0))[1],
                bytes_from_peers=r.bytes_from_peers,
            ) for r in rows],
            outbox_backlog=counts["closed"] + counts["open"], outbox_quarantined=counts["quarantined"],
            outbox_problem=refusal, outbox_retry_seconds=round(self.outbox.retry_in(), 1)
            if counts["quarantined"] else None,
            clock_confirmed=self.clock.confirmed(), clock_boot_id=self.clock.boot_id,
            clock_confirmed_at=to_db(self.clock.confirmed_at) if self.clock.confirmed_at else None,
            clock_error_seconds=None if (err := self.clock.error_seconds()) is None else round(err, 1),
            session=session, enrolled=bool(self.config.terminal_id), village_name=village_name or "",
            link=link,
            problems=problems, next_session=next_session, last_session=last_session,
            scheduled=scheduled, roster_members=members,
        )
