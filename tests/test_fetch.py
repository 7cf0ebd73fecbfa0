"""Resolution order, cache, and the real download path over a loopback HTTP server."""
import functools
import hashlib
import http.server
import shutil
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from gan_writer.data import (ChecksumError, CorpusFormatError, CorpusNotFoundError, DownloadError,
                             corpus_files, load_corpus, registry, resolve_file, sha256_file)
from gan_writer.data.fetch import default_cache_dir, download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextmanager
def serve(directory):
    """Serve ``directory`` on 127.0.0.1 (port chosen by the OS); yields the base URL and a
    list that records each requested path."""
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No data folder (GAN_WRITER_DATA empty: not even shared/data beside the checkout), no
    GAN_WRITER_MIRROR, and a fresh GAN_WRITER_CACHE."""
    monkeypatch.setenv("GAN_WRITER_DATA", "")
    monkeypatch.delenv("GAN_WRITER_MIRROR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("GAN_WRITER_CACHE", str(cache))
    return cache


def leftovers(root: Path):
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".part")]


def test_registry_matches_shared_data(shared_data):
    table = registry()
    for rel, entry in table.items():
        path = shared_data / rel
        assert path.stat().st_size == entry["size"], rel
        assert sha256_file(path) == entry["sha256"], rel
        assert entry["url"] is None or entry["url"].startswith("https://raw.githubusercontent.com/"), rel
    assert len([r for r in table if r.startswith("poetry_zh/tang/poet.tang.")]) == 58


def test_download_over_loopback_then_cache(shared_data, no_env, monkeypatch):
    with serve(shared_data) as (base, requests):
        monkeypatch.setenv("GAN_WRITER_MIRROR", base + "/")
        splits = load_corpus("coco", seed=1)
        assert sorted(requests) == ["/benchmarks/coco/test_coco.txt", "/benchmarks/coco/train_coco.txt"]
    for rel in corpus_files("coco"):
        cached = no_env / rel
        assert cached.is_file() and sha256_file(cached) == registry()[rel]["sha256"]
    assert not leftovers(no_env)
    # server is down now: the second call must use the cache only
    monkeypatch.setenv("GAN_WRITER_MIRROR", "http://127.0.0.1:9/")
    again = load_corpus("coco", seed=1)
    assert again == splits and again.files[0].startswith(str(no_env.resolve()))


def test_mirror_quotes_non_ascii_paths(no_env, tmp_path):
    site = tmp_path / "site"
    (site / "全唐诗").mkdir(parents=True)
    (site / "全唐诗" / "詩.txt").write_text("床前明月光\n", encoding="utf-8")
    digest = sha256_file(site / "全唐诗" / "詩.txt")
    with serve(site) as (base, requests):
        path = resolve_file("全唐诗/詩.txt", mirror=base, url="http://127.0.0.1:9/unused", sha256=digest)
    assert requests == ["/%E5%85%A8%E5%94%90%E8%AF%97/%E8%A9%A9.txt"]
    assert path == no_env / "全唐诗" / "詩.txt" and path.read_text(encoding="utf-8") == "床前明月光\n"


def test_corrupted_download_is_an_error_and_leaves_nothing(shared_data, no_env, tmp_path, monkeypatch):
    rel = "benchmarks/coco/test_coco.txt"
    bad_root = tmp_path / "bad_mirror"
    (bad_root / "benchmarks/coco").mkdir(parents=True)
    data = bytearray((shared_data / rel).read_bytes())
    data[1000] ^= 0x20
    (bad_root / rel).write_bytes(bytes(data))
    shutil.copy(shared_data / "benchmarks/coco/train_coco.txt", bad_root / "benchmarks/coco")
    expected = registry()[rel]["sha256"]
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with serve(bad_root) as (base, _):
        monkeypatch.setenv("GAN_WRITER_MIRROR", base)
        with pytest.raises(ChecksumError) as info:
            load_corpus("coco")
    msg = str(info.value)
    assert "test_coco.txt" in msg and expected in msg and actual in msg
    assert info.value.expected == expected and info.value.actual == actual
    assert not (no_env / rel).exists() and not leftovers(no_env)
    assert (no_env / "benchmarks/coco/train_coco.txt").is_file()  # the good file was kept


def test_archive_member_download(shared_data, no_env, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    with tarfile.open(site / "data.tgz", "w:gz") as tar:
        for split in ("train", "valid", "test"):
            tar.add(shared_data / f"poetry_en/sonnets/sonnet_{split}.txt", f"data/sonnet_{split}.txt")
    table = registry()
    with serve(site) as (base, _):
        for rel in corpus_files("sonnets"):
            resolve_file(rel, url=f"{base}/data.tgz", sha256=table[rel]["sha256"],
                         archive_member=table[rel]["archive_member"])
        assert load_corpus("sonnets").sizes == {"train": 2685, "valid": 335, "test": 335}
        with pytest.raises(DownloadError, match="no file named 'missing.txt'"):
            resolve_file("x/missing.txt", url=f"{base}/data.tgz", archive_member="missing.txt")
        (site / "page.html").write_text("<html>not an archive</html>")
        with pytest.raises(DownloadError, match="not a readable tar archive"):
            resolve_file("x/y.txt", url=f"{base}/page.html", archive_member="y.txt")
    with pytest.raises(ValueError, match="without '..'"):
        resolve_file("../etc/passwd")
    assert not leftovers(no_env)


def test_http_error_and_no_source(no_env, tmp_path):
    with serve(tmp_path) as (base, _):
        with pytest.raises(DownloadError, match="HTTP 404"):
            resolve_file("nothing/here.txt", url=f"{base}/nothing/here.txt")
    with pytest.raises(CorpusNotFoundError) as info:
        resolve_file("poetry_en/public_domain/poems_4to40_00.jsonl")
    msg = str(info.value)
    assert "GAN_WRITER_DATA" in msg and "GAN_WRITER_MIRROR" in msg and str(no_env) in msg
    assert not leftovers(no_env)
    assert not no_env.exists()  # a failed download leaves no empty folders behind


def test_order_data_dir_then_env_then_cache(no_env, tmp_path, monkeypatch):
    rel = "a/b.txt"
    for name in ("mine", "env"):
        (tmp_path / name / "a").mkdir(parents=True)
        (tmp_path / name / rel).write_text(name)
    (no_env / "a").mkdir(parents=True)
    (no_env / rel).write_text("cache")
    monkeypatch.setenv("GAN_WRITER_DATA", str(tmp_path / "env"))
    assert resolve_file(rel, data_dir=tmp_path / "mine").read_text() == "mine"
    assert resolve_file(rel, data_dir=tmp_path / "elsewhere").read_text() == "env"
    monkeypatch.setenv("GAN_WRITER_DATA", "")
    assert resolve_file(rel).read_text() == "cache"
    assert default_cache_dir() == no_env and default_cache_dir(tmp_path) == tmp_path


def test_data_dir_is_trusted_but_empty_file_is_an_error(no_env, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("edited by the user")
    assert resolve_file("f.txt", data_dir=tmp_path / "d", sha256="0" * 64).read_text() == "edited by the user"
    (tmp_path / "d" / "e.txt").write_bytes(b"")
    with pytest.raises(CorpusFormatError, match=r"e\.txt is empty"):
        resolve_file("e.txt", data_dir=tmp_path / "d")


def test_cache_mismatch_is_reported_and_file_kept(no_env):
    (no_env / "x").mkdir(parents=True)
    (no_env / "x" / "f.txt").write_text("user put this here")
    expected = "ab" * 32
    with pytest.raises(ChecksumError) as info:
        resolve_file("x/f.txt", sha256=expected, url="http://127.0.0.1:9/never")
    msg = str(info.value)
    assert "f.txt" in msg and expected in msg and sha256_file(no_env / "x" / "f.txt") in msg
    assert (no_env / "x" / "f.txt").read_text() == "user put this here"


def test_download_function_file_url(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("hello\n")
    target = download(src.as_uri(), tmp_path / "out" / "dst.txt",
                      sha256=hashlib.sha256(b"hello\n").hexdigest())
    assert target.read_text() == "hello\n"
    # an existing file is only replaced by a verified download
    with pytest.raises(ChecksumError):
        download(src.as_uri(), target, sha256="0" * 64)
    assert target.read_text() == "hello\n" and not leftovers(tmp_path)
    shutil.rmtree(tmp_path / "out")


def test_unset_data_variable_means_shared_data_beside_the_checkout(shared_data, monkeypatch, tmp_path):
    from gan_writer.data.fetch import data_dirs, default_data_dir

    checkout = Path(__file__).resolve().parents[1]
    if default_data_dir() is None or default_data_dir() != (checkout.parent / "shared" / "data").resolve():
        pytest.skip("no shared/data beside this checkout")
    monkeypatch.delenv("GAN_WRITER_DATA", raising=False)
    monkeypatch.setenv("GAN_WRITER_CACHE", str(tmp_path / "cache"))
    assert data_dirs() == [default_data_dir()]
    assert resolve_file("poetry_zh/shi.txt") == default_data_dir() / "poetry_zh" / "shi.txt"
    monkeypatch.setenv("GAN_WRITER_DATA", str(tmp_path))  # set: only that folder
    assert data_dirs() == [tmp_path]
    monkeypatch.setenv("GAN_WRITER_DATA", "")  # empty: none
    assert data_dirs() == []


def test_offline_download_is_one_line_naming_corpus_url_and_both_ways_out(no_env, monkeypatch):
    from gan_writer.data.corpora import fetch_corpus

    monkeypatch.setenv("GAN_WRITER_MIRROR", "http://127.0.0.1:9/data")  # nothing listens on port 9
    with pytest.raises(DownloadError) as info:
        fetch_corpus("shi")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("corpus 'shi' (poetry_zh/shi.txt): download of http://127.0.0.1:9/data/poetry_zh/shi.txt failed")
    assert "GAN_WRITER_DATA" in msg and "network" in msg and "GAN_WRITER_MIRROR" in msg
    assert not no_env.exists()
