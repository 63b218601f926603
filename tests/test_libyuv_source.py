"""scripts/libyuv-source against a registry stand-in on 127.0.0.1: the pinned archive is
unpacked (its libyuv folder only) and reused; a wrong checksum, a download cut short, an unsafe
member and an unreachable registry each fail with a clear error and leave the destination as it
was (a tree already there stays whole), with no scratch folder behind."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "libyuv-source"
NAME = "yuv-sys-9.9.9"


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("libyuv_source", str(SCRIPT))
    spec = importlib.util.spec_from_loader("libyuv_source", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_script()
    monkeypatch.setattr(module.time, "sleep", lambda _s: None)  # retries without the pause
    return module


def crate(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


GOOD = {
    f"{NAME}/Cargo.toml": b"[package]\n",
    f"{NAME}/libyuv/CMakeLists.txt": b"project(YUV C CXX)\n",
    f"{NAME}/libyuv/include/libyuv.h": b"// libyuv\n",
    f"{NAME}/libyuv/include/libyuv/version.h": b"#define LIBYUV_VERSION 1886\n",
    f"{NAME}/libyuv/source/row_any.cc": b"// rows\n",
}


class Registry:
    """Serves one archive at /NAME.crate; `cut` bytes are promised but never sent."""

    def __init__(self) -> None:
        self.body = b""
        self.cut = 0
        self.requests = 0
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests += 1
                if self.path != f"/{NAME}.crate":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(registry.body) + registry.cut))
                self.end_headers()
                self.wfile.write(registry.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/{NAME}.crate"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def serve(self, body: bytes, cut: int = 0) -> str:
        self.body, self.cut = body, cut
        return hashlib.sha256(body).hexdigest()


@pytest.fixture
def registry() -> Iterator[Registry]:
    registry = Registry()
    registry.thread.start()
    yield registry
    registry.server.shutdown()
    registry.server.server_close()
    registry.thread.join(timeout=5)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_unpacks_the_libyuv_folder_and_reuses_it(
    script: ModuleType, registry: Registry, tmp_path: Path
) -> None:
    sha = registry.serve(crate(GOOD))
    dest = tmp_path / "third_party" / "libyuv"
    script.fetch(dest, registry.url, sha)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [
        script.STAMP,
        "CMakeLists.txt",
        "include/libyuv.h",
        "include/libyuv/version.h",
        "source/row_any.cc",
    ]
    assert leftovers(dest.parent) == []
    script.fetch(dest, registry.url, sha)
    assert registry.requests == 1, "a tree of the same pin is reused, not fetched again"


def test_a_new_pin_replaces_the_old_tree(
    script: ModuleType, registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "libyuv"
    old = {**GOOD, f"{NAME}/libyuv/source/old_only.cc": b"// gone after\n"}
    script.fetch(dest, registry.url, registry.serve(crate(old)))
    script.fetch(dest, registry.url, registry.serve(crate(GOOD)))
    assert not (dest / "source" / "old_only.cc").exists()
    assert (dest / "source" / "row_any.cc").exists()
    assert leftovers(tmp_path) == []


def test_a_checksum_mismatch_is_refused(
    script: ModuleType, registry: Registry, tmp_path: Path
) -> None:
    registry.serve(crate(GOOD))
    with pytest.raises(script.FetchError, match="refusing it") as e:
        script.fetch(tmp_path / "libyuv", registry.url, "0" * 64)
    assert "0" * 64 in str(e.value)
    assert registry.requests == 1, "a mismatch is not retried"
    assert list(tmp_path.iterdir()) == []


def test_a_download_cut_short_is_retried_then_fails_and_keeps_the_old_tree(
    script: ModuleType, registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "libyuv"
    script.fetch(dest, registry.url, registry.serve(crate(GOOD)))
    body = crate({**GOOD, f"{NAME}/libyuv/source/new.cc": b"// new\n"})
    sha = registry.serve(body[: len(body) // 2], cut=len(body) - len(body) // 2)
    with pytest.raises(script.FetchError, match="cannot download"):
        script.fetch(dest, registry.url, sha)
    assert registry.requests == 1 + script.TRIES
    assert (dest / "source" / "row_any.cc").exists() and not (dest / "source" / "new.cc").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("members", "links", "error"),
    [
        ({**GOOD, f"{NAME}/libyuv/../../escape.txt": b"x"}, None, "unsafe path"),
        (GOOD, {f"{NAME}/libyuv/include/link.h": "/etc/passwd"}, "link or device"),
        ({f"{NAME}/Cargo.toml": b""}, None, "does not carry libyuv"),
    ],
    ids=["dot-dot", "symlink", "no-libyuv"],
)
def test_an_archive_that_is_not_a_plain_libyuv_tree_is_refused(
    script: ModuleType,
    registry: Registry,
    tmp_path: Path,
    members: dict[str, bytes],
    links: dict[str, str] | None,
    error: str,
) -> None:
    dest = tmp_path / "sub" / "libyuv"
    script.fetch(dest, registry.url, registry.serve(crate(GOOD)))
    before = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    sha = registry.serve(crate(members, links))
    with pytest.raises(script.FetchError, match=error):
        script.fetch(dest, registry.url, sha)
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == before
    assert leftovers(tmp_path / "sub") == []
    assert not (tmp_path / "escape.txt").exists()


def test_an_unreachable_registry_fails_with_what_to_do(script: ModuleType, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    what = r"cannot download .*WARMRTC_LIBYUV_PROVIDER=system"
    with pytest.raises(script.FetchError, match=what):
        script.fetch(tmp_path / "libyuv", f"http://127.0.0.1:{port}/{NAME}.crate", "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_reports_a_failure_in_one_line(
    script: ModuleType, registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.serve(crate(GOOD))
    script.URL, script.SHA256 = registry.url, "0" * 64
    assert script.main([str(tmp_path / "libyuv")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("libyuv-source: FAILED: ") and "refusing it" in lines[-1]
    assert script.main(["--help"]) == 2
