"""helpers.data (Chapter 1): the sliding-window loader and the safe download of the-verdict."""

import hashlib
import http.server
import socket
import threading
from functools import partial

import pytest
import torch

from helpers.data import (
    THE_VERDICT_SHA256,
    SlidingWindowDataset,
    count_windows,
    create_dataloader,
    download,
    fetch_the_verdict,
)


def test_verdict_is_the_pinned_file(verdict_text):
    assert hashlib.sha256(verdict_text.encode("utf-8")).hexdigest() == THE_VERDICT_SHA256


@pytest.mark.parametrize(
    "n, length, stride", [(100, 10, 1), (100, 10, 10), (101, 10, 10), (11, 10, 3), (57, 4, 5)]
)
def test_windows_are_shifted_by_one_and_counted(n, length, stride):
    ids = torch.arange(n) * 7
    ds = SlidingWindowDataset(ids, context_length=length, stride=stride)
    assert len(ds) == count_windows(n, length, stride) == len(range(0, n - length, stride))
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (length,)
        assert torch.equal(x, ids[i * stride : i * stride + length])
        assert torch.equal(y, ids[i * stride + 1 : i * stride + length + 1])


def test_dataloader_shapes_and_batch_count():
    ids = list(range(1000))
    loader = create_dataloader(
        ids, batch_size=8, context_length=16, stride=16, shuffle=False, drop_last=True
    )
    batches = list(loader)
    assert len(batches) == len(loader) == count_windows(1000, 16, 16) // 8
    x, y = batches[0]
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.long
    assert torch.equal(y[:, :-1], x[:, 1:])


def test_dataloader_seed_fixes_the_order_without_touching_global_rng():
    ids = list(range(500))
    torch.manual_seed(0)
    before = torch.rand(1)
    first = [x for x, _ in create_dataloader(ids, batch_size=2, context_length=8, stride=8, seed=1)]
    torch.manual_seed(0)
    second = [
        x for x, _ in create_dataloader(ids, batch_size=2, context_length=8, stride=8, seed=1)
    ]
    after = torch.rand(1)  # the global generator was re-seeded only by this test
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert torch.equal(before, after)


def test_bad_input():
    with pytest.raises(ValueError, match=r"stride=0 must be at least 1"):
        SlidingWindowDataset(range(100), context_length=10, stride=0)
    with pytest.raises(
        ValueError, match=r"the text has 5 tokens, but one window needs context_length \+ 1 = 11"
    ):
        SlidingWindowDataset(range(5), context_length=10, stride=1)
    with pytest.raises(ValueError, match=r"batch_size=0"):
        create_dataloader(range(100), batch_size=0, context_length=4, stride=4)
    with pytest.raises(ValueError, match=r"one flat sequence"):
        SlidingWindowDataset(torch.zeros(2, 50, dtype=torch.long), context_length=4, stride=4)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A file server on 127.0.0.1 serving tmp_path/www, for download tests without the internet."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_downloads_once_and_checks_the_hash(server, tmp_path, verdict_text):
    www, base = server
    (www / "the-verdict.txt").write_text(verdict_text, encoding="utf-8")
    data_dir = tmp_path / "data"
    path = fetch_the_verdict(data_dir, url=f"{base}/the-verdict.txt", timeout=5)
    assert path.read_text(encoding="utf-8") == verdict_text
    (www / "the-verdict.txt").unlink()  # a second call must not download again
    assert fetch_the_verdict(data_dir, url=f"{base}/the-verdict.txt", timeout=5) == path


def test_a_corrupt_download_leaves_nothing_behind(server, tmp_path):
    www, base = server
    (www / "the-verdict.txt").write_text("not the story", encoding="utf-8")
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match="has sha256 .* expected .*nothing was saved"):
        fetch_the_verdict(data_dir, url=f"{base}/the-verdict.txt", timeout=5)
    assert list(data_dir.iterdir()) == []


def test_no_network_says_where_to_put_the_file(tmp_path):
    with socket.socket() as s:  # a port with nothing listening: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        FileNotFoundError,
        match=r"the-verdict.txt is missing and the download failed.*copy the-verdict.txt",
    ):
        fetch_the_verdict(tmp_path, url=f"http://127.0.0.1:{port}/the-verdict.txt", timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_local_copy_is_refused(tmp_path):
    (tmp_path / "the-verdict.txt").write_text("something else")
    with pytest.raises(ValueError, match="not the book's copy.*delete it"):
        fetch_the_verdict(tmp_path)


def test_download_without_hash(server, tmp_path):
    www, base = server
    (www / "f.bin").write_bytes(b"\x00\x01" * 1000)
    assert download(f"{base}/f.bin", tmp_path / "f.bin").read_bytes() == b"\x00\x01" * 1000
