"""medallion 3 (the OASIS TAXII 2.1 reference server, memory backend) in a subprocess on 127.0.0.1.

One API root `api1` with one readable and writable collection; HTTP Basic user `wia`/`wia-pass`.
Stop by PID (terminate); each server gets a fresh temporary data file, so tests do not share state.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLLECTION_ID = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
USER, PASSWORD = "wia", "wia-pass"
MEDIA = "application/stix+json;version=2.1"


def _data(port: int) -> dict:
    return {
        "/discovery": {"title": "WIA test TAXII server", "default": f"http://127.0.0.1:{port}/api1/",
                       "api_roots": [f"http://127.0.0.1:{port}/api1/"]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 104857600},
            "status": [],
            "collections": [{"id": COLLECTION_ID, "title": "WIA events", "can_read": True, "can_write": True,
                             "media_types": [MEDIA], "objects": [], "manifest": []}],
        },
    }


#: medallion's app served one request at a time. Its own CLI (Flask's app.run) serves requests in
#: threads, and the MemoryBackend has no locking: a Get Objects sorting the manifest in place while
#: another request walks it makes that one list part of the collection (see servers/medallion.py).
_SERVE = """
import sys
import medallion
from werkzeug.serving import run_simple
run_simple("127.0.0.1", int(sys.argv[1]), medallion.load_app(sys.argv[2]), threaded=False)
"""


class Medallion:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wia-medallion-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.dir / "data.json").write_text(json.dumps(_data(self.port)))
        (self.dir / "config.json").write_text(json.dumps({
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": str(self.dir / "data.json")},
            "users": {USER: PASSWORD}, "taxii": {"max_page_size": 100}}))
        self.url = f"http://127.0.0.1:{self.port}"
        self.collection_url = f"{self.url}/api1/collections/{COLLECTION_ID}/"
        self.proc: subprocess.Popen | None = None
        self.log = open(self.dir / "medallion.log", "w")

    def start(self) -> "Medallion":
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(self.port), str(self.dir / "config.json")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"medallion exited with {self.proc.returncode}")
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("medallion did not start within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Medallion":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_objects(self, objects: list[dict]) -> dict:
        """Publishes STIX objects with taxii2-client (the way a producer would); returns the TAXII status."""
        from taxii2client.v21 import Collection
        collection = Collection(self.collection_url, user=USER, password=PASSWORD)
        status = collection.add_objects({"objects": objects}, wait_for_completion=True, poll_interval=0.2, timeout=30)
        return {"status": status.status, "success_count": status.success_count, "failure_count": status.failure_count,
                "failed_ids": [f.get("id") for f in status.failures or []]}


def publish_event(server: Medallion, event: dict) -> dict:
    """A WIA event as its STIX bundle (wia_security.convert(event, to="stix")) into the collection.

    The extension-definition object is left out: medallion 3.0.0 sorts objects by a `version`
    property, which an extension-definition has with another meaning ("1.0.0"), and then fails every
    read of the collection with a 500. Objects several events share (the identity) are refused the
    second time as already present; anything else refused fails the publication."""
    from wia_security import convert
    objects = [o for o in convert(event, to="stix")["objects"] if o["type"] != "extension-definition"]
    published = server.__dict__.setdefault("published_ids", set())
    status = server.add_objects(objects)
    unexpected = set(status["failed_ids"]) - published
    if unexpected:
        raise AssertionError(f"medallion refused {sorted(unexpected)} of event {event.get('id')}")
    published.update(o["id"] for o in objects)
    return status
