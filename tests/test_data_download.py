"""`weakdis data download` against a local HTTP server with Range support (no internet)."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading

import pytest

from search.cli import main as weakdis
from test_data_support import small_dsprites  # noqa: F401  (fixture)
from trainables.data.download import OFFICIAL_FILES, download
from trainables.errors import WeakdisError


class _FileServer(http.server.ThreadingHTTPServer):
    payload = b""
    cut_after: int | None = None      # close the connection after this many body bytes, once
    ranges: list


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):     # keep the test output quiet
        pass

    def do_GET(self):
        server: _FileServer = self.server
        data = server.payload
        header = self.headers.get("Range")
        server.ranges.append(header)
        start = 0
        if header:
            start = int(header.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            self.wfile.write(body[: server.cut_after])
            server.cut_after = None
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def server(small_dsprites):
    httpd = _FileServer(("127.0.0.1", 0), _Handler)
    httpd.payload = small_dsprites.read_bytes()
    httpd.ranges = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/dsprites.npz"


def test_download_verifies_and_renames(tmp_path, server):
    sha = hashlib.sha256(server.payload).hexdigest()
    bar = io.StringIO()
    path = download("dsprites", tmp_path, url=_url(server), sha256=sha, progress=bar)
    assert path == tmp_path / OFFICIAL_FILES["dsprites"].filename
    assert path.read_bytes() == server.payload
    assert not (tmp_path / (path.name + ".part")).exists()
    assert f"/{len(server.payload) / 1e6:,.1f} MB (100%)" in bar.getvalue() and server.ranges == [None]
    # a second call finds the verified file and fetches nothing
    assert download("dsprites", tmp_path, url=_url(server), sha256=sha, progress=None) == path
    assert server.ranges == [None]


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    sha = hashlib.sha256(server.payload).hexdigest()
    server.cut_after = 5000
    with pytest.raises(WeakdisError, match=r"5000 bytes are kept in .*\.part: run the same command again to resume"):
        download("dsprites", tmp_path, url=_url(server), sha256=sha, retries=0, progress=None)
    part = tmp_path / (OFFICIAL_FILES["dsprites"].filename + ".part")
    assert part.stat().st_size == 5000
    assert not (tmp_path / OFFICIAL_FILES["dsprites"].filename).exists()
    path = download("dsprites", tmp_path, url=_url(server), sha256=sha, progress=None)
    assert server.ranges == [None, "bytes=5000-"]
    assert path.read_bytes() == server.payload and not part.exists()


def test_a_cut_is_retried_within_one_call(tmp_path, server):
    server.cut_after = 12345
    sha = hashlib.sha256(server.payload).hexdigest()
    path = download("dsprites", tmp_path, url=_url(server), sha256=sha, retries=2, progress=None)
    assert path.read_bytes() == server.payload
    assert server.ranges == [None, "bytes=12345-"]


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path, server, capsys):
    wrong = "0" * 64
    code = weakdis(["data", "download", "dsprites", "--dir", str(tmp_path), "--url", _url(server), "--sha256", wrong])
    assert code == 1
    err = capsys.readouterr().err
    assert f"checksum mismatch, sha256 {hashlib.sha256(server.payload).hexdigest()}; expected {wrong}" in err
    assert list(tmp_path.iterdir()) == []


def test_the_published_checksum_is_the_default(tmp_path, server):
    with pytest.raises(WeakdisError, match=f"checksum mismatch, md5 .*; expected {OFFICIAL_FILES['dsprites'].digest}"):
        download("dsprites", tmp_path, url=_url(server), progress=None)


def test_cli_download_prints_the_path(tmp_path, server, capsys):
    sha = hashlib.sha256(server.payload).hexdigest()
    assert weakdis(["data", "download", "dsprites", "--dir", str(tmp_path), "--url", _url(server), "--sha256", sha]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / OFFICIAL_FILES["dsprites"].filename)
    assert captured.err.count("(100%)") == 1
