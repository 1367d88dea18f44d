"""medallion 3 (the OASIS TAXII 2.1 reference server) in-process on 127.0.0.1, memory backend.

`load_app()` works once per process, so one app serves the whole session (werkzeug in a thread);
`reset()` gives each test fresh data by assigning a new MemoryBackend. One API root `api1` with
a read/write collection and a read-only one; HTTP Basic user `wia` / `wia-secret-pass`.

Requests are served one at a time (`OneRequestAtATime`): the MemoryBackend is not thread-safe.
The server's clock (its `Date` header and the date_added it stamps on Add) can be set ahead or
behind ours (`clock_offset`), so tests move time on the server instead of sleeping.
"""
from __future__ import annotations

import io
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

USER, PASSWORD = "wia", "wia-secret-pass"
MEDIA = "application/stix+json;version=2.1"
WRITABLE = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
READ_ONLY = "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4"
MAX_PAGE_SIZE = 100


def _data(url: str) -> dict:
    collection = {"can_read": True, "media_types": [MEDIA], "objects": [], "manifest": []}
    return {
        "/discovery": {"title": "medallion (test)", "description": "OASIS TAXII 2.1 reference server",
                       "default": f"{url}/api1/", "api_roots": [f"{url}/api1/"]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 9_765_625},
            "status": [],
            "collections": [{**collection, "id": WRITABLE, "title": "writable", "can_write": True},
                            {**collection, "id": READ_ONLY, "title": "read-only", "can_write": False,
                             "objects": [], "manifest": []}],
        },
    }


class OneRequestAtATime:
    """A WSGI wrapper serving requests one at a time, in arrival order (werkzeug takes them in threads).

    medallion's MemoryBackend has no locking: every Get Objects sorts the collection's manifest in
    place, and while `list.sort` runs the list reads as empty to other threads (its key function can
    hand the GIL over), so a concurrent Get Objects lists only part of the collection and a
    concurrent Add Objects loses its manifest entries. Requests do overlap in the crash tests: a
    SIGKILLed pull's request goes on in its server thread while the next pull polls. Arrival order
    keeps such a left-over request from running between the pages of a later walk (medallion drops a
    `next` cursor 30 s after the walk's first page)."""

    def __init__(self, app) -> None:
        self.app = app
        self._turn = threading.Condition()
        self._issued = self._served = 0
        self.waiting = 0                      # requests queued behind the one being served (a test waits on it)
        self.unordered = None                 # environ -> True: served at once, beside the others (a test sets it)

    def __call__(self, environ, start_response):
        if self.unordered is not None and self.unordered(environ):
            return list(self.app(environ, start_response))
        with self._turn:
            ticket, self._issued = self._issued, self._issued + 1
            if ticket != self._served:
                self.waiting += 1
                self._turn.wait_for(lambda: self._served == ticket)
                self.waiting -= 1
        try:
            return list(self.app(environ, start_response))     # the body is made from the backend's data too
        finally:
            with self._turn:
                self._served += 1
                self._turn.notify_all()


def server_timestamp(server):
    from medallion.common import get_timestamp
    return get_timestamp() + timedelta(seconds=server.clock_offset)


def _clocked_handler():
    from werkzeug.serving import WSGIRequestHandler

    class ClockedHandler(WSGIRequestHandler):
        def date_time_string(self, timestamp=None):
            return super().date_time_string(time.time() + self.server.clock_offset if timestamp is None else timestamp)
    return ClockedHandler


@dataclass
class Medallion:
    app: object
    url: str
    server: object = field(repr=False)

    @property
    def clock_offset(self) -> float:
        """Seconds the server's clock is ahead of ours (negative: behind), for its Date header and the
        date_added it stamps on Add."""
        return self.server.clock_offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self.server.clock_offset = seconds

    def now(self) -> str:
        """The server's clock as a date_added timestamp."""
        from medallion.common import datetime_to_string
        return datetime_to_string(server_timestamp(self.server))

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/taxii2/"

    @property
    def api_root_url(self) -> str:
        return f"{self.url}/api1/"

    def collection_url(self, collection_id: str = WRITABLE) -> str:
        return f"{self.url}/api1/collections/{collection_id}/"

    def reset(self) -> None:
        from medallion.backends.memory_backend import MemoryBackend
        # MemoryBackend reads a file object as well as a path: no data file per test (one per test in /tmp,
        # never removed, was thousands of wia-medallion-* folders after a few runs)
        self.app.medallion_backend = MemoryBackend(filename=io.StringIO(json.dumps(_data(self.url))))
        self.server.app.unordered = None
        self.clock_offset = 0.0

    def load(self, collection_id: str, objects: list[dict], date_added: str) -> None:
        """Seed a collection directly in the backend, every object with the same date_added."""
        backend = self.app.medallion_backend
        for coll in backend.data["api1"]["collections"]:
            if coll["id"] == collection_id:
                for obj in objects:
                    coll["objects"].append(obj)
                    coll["manifest"].append({"id": obj["id"], "date_added": date_added,
                                             "version": obj.get("modified", obj.get("created")), "media_type": MEDIA})


@pytest.fixture(scope="session")
def medallion_server(tmp_path_factory):
    medallion = pytest.importorskip("medallion", reason="medallion is in the test extra")
    from werkzeug.serving import make_server
    folder = tmp_path_factory.mktemp("medallion")
    (folder / "data.json").write_text(json.dumps(_data("http://127.0.0.1")))
    (folder / "config.json").write_text(json.dumps({
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(folder / "data.json")},
        "users": {USER: PASSWORD}, "taxii": {"max_page_size": MAX_PAGE_SIZE}}))
    app = medallion.load_app(str(folder / "config.json"))
    server = make_server("127.0.0.1", 0, OneRequestAtATime(app), threaded=True, request_handler=_clocked_handler())
    server.clock_offset = 0.0
    import medallion.views.objects as objects_view        # Add Objects stamps date_added with its get_timestamp
    objects_view.get_timestamp = lambda: server_timestamp(server)
    thread = threading.Thread(target=server.serve_forever, name=f"medallion-{uuid.uuid4().hex[:6]}", daemon=True)
    thread.start()
    yield Medallion(app, f"http://127.0.0.1:{server.server_port}", server)
    server.shutdown()


@pytest.fixture
def medallion(medallion_server):
    medallion_server.reset()
    return medallion_server
