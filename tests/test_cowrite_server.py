"""The studio's server through its API client: the co-writing flow, errors, queueing of
concurrent requests, progress and cancellation, loopback binding."""
import threading
import time

import pytest
from cowrite_stub import StubGenerator

from gan_writer.cowrite.client import StudioClient, StudioError
from gan_writer.cowrite.decoding import Cancelled
from gan_writer.cowrite.server import make_server, serve_in_thread
from gan_writer.cowrite.session import Session


@pytest.fixture
def studio(tmp_path):
    def start(generator, **kw):
        session = Session(generator, "poem", "wujue", path=tmp_path / "s.json", **kw)
        server, url = serve_in_thread(session)
        servers.append(server)
        return StudioClient(url, timeout=30), session
    servers = []
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_flow_through_the_api(studio, tmp_path):
    client, session = studio(StubGenerator())
    assert "gan-writer studio" in client.page()
    st = client.op("write", text="白日依山尽")
    assert st["text"] == "白日依山尽，" and st["can_undo"] and not st["can_redo"]
    st = client.op("alternatives", k=3)
    assert len(st["candidates"]) == 3 and [c["score"] for c in st["candidates"]] == [1.0, 0.9, 0.8]
    picked = st["candidates"][1]["text"] + "。"
    st = client.op("choose", i=1)
    assert st["spans"][1] == {"text": picked, "author": "model", "seed": 1, "op": "choose", "display": picked}
    assert "display" not in session.spans[1]  # the page's view only: not in the session or its file
    assert '"display"' not in (tmp_path / "s.json").read_text()
    st = client.op("undo")
    assert len(st["spans"]) == 1 and len(st["candidates"]) == 3 and st["can_redo"]
    st = client.op("redo")
    assert st["text"] == "白日依山尽，\n" + picked
    assert client.export("markdown").startswith("白日依山尽，  \n" + picked + "  \n")
    assert Session.open(tmp_path / "s.json", StubGenerator()).text == st["text"]  # saved after each op
    st = client.op("temperature", temperature=0.6)
    assert st["temperature"] == 0.6
    with pytest.raises(StudioError, match="candidate 5 does not exist|no candidates") as err:
        client.op("choose", i=4)
    assert err.value.status == 400 and err.value.state["text"] == st["text"]
    with pytest.raises(StudioError, match="unknown op 'format_disk'"):
        client.op("format_disk")
    with pytest.raises(StudioError, match="Fountain is for scripts"):
        client.export("fountain")


class SlowGenerator(StubGenerator):
    """Takes ``steps`` x 20 ms, reporting progress and honouring cancel; counts concurrent calls."""

    def __init__(self, steps=10):
        super().__init__()
        self.steps, self.active, self.most = steps, 0, 0
        self.guard = threading.Lock()

    def propose(self, req):
        with self.guard:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            for i in range(self.steps):
                if req.cancel is not None and req.cancel.is_set():
                    raise Cancelled("generation cancelled by the writer")
                if req.progress:
                    req.progress(i, self.steps)
                time.sleep(0.02)
            return super().propose(req)
        finally:
            with self.guard:
                self.active -= 1


def test_concurrent_requests_queue(studio):
    gen = SlowGenerator()
    client, session = studio(gen)
    errors = []

    def ask():
        try:
            client.op("alternatives", k=2)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and gen.most == 1 and len(gen.requests) == 4
    assert [r["op"] for r in session.log] == ["alternatives"] * 4
    assert sorted(r.seed for r in gen.requests) == [0, 1, 2, 3]


def test_progress_and_cancel(studio):
    gen = SlowGenerator(steps=500)
    client, session = studio(gen)
    client.op("write", text="白日依山尽")
    result = {}
    def run():
        try:
            result["state"] = client.op("alternatives", k=2)
        except StudioError as err:
            result["err"] = err
    t = threading.Thread(target=run)
    t.start()
    for _ in range(200):
        p = client.progress()
        if p["busy"] and p["step"] >= 3:
            break
        time.sleep(0.02)
    assert p["busy"] and p["op"] == "alternatives" and p["steps"] == 500 and p["step"] >= 3
    assert client.cancel() == {"cancelling": True}
    t.join(10)
    assert result["err"].status == 409 and "cancelled" in str(result["err"])
    assert [r["op"] for r in session.log] == ["write"] and client.state()["candidates"] == []
    assert client.progress()["busy"] is False


def test_binds_to_loopback_by_default(tmp_path):
    server = make_server(Session(StubGenerator()), port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    from gan_writer.commands.studio import add_arguments
    import argparse
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--ckpt", "x"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)


def test_studio_command_serves_a_checkpoint(tmp_path, monkeypatch, capsys):
    """``gan-writer studio``: loads the checkpoint once, serves on loopback, keeps the session file."""
    import torch
    from helpers import tiny_gpt2

    import gan_writer.cowrite.server as server_mod
    from gan_writer.checkpoint import payload
    from gan_writer.cli import main
    from gan_writer.tokenization import char_tokenizer

    tok = char_tokenizer(["白日依山尽黄河入海流月落乌啼霜满天，。"])
    gen = tiny_gpt2(vocab=len(tok), seed=0, n_positions=32)
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                "gan_writer": payload(gen, tok, max_length=25)}, ckpt)
    made, real = [], server_mod.make_server
    monkeypatch.setattr(server_mod, "make_server", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    result = {}
    t = threading.Thread(target=lambda: result.update(rc=main(
        ["studio", "--ckpt", str(ckpt), "--port", "0", "--session", str(tmp_path / "s.json")])))
    t.start()
    for _ in range(600):
        if made or not t.is_alive():
            break
        time.sleep(0.05)
    assert made, "the studio did not start"
    host, port = made[0].server_address[:2]
    try:
        assert host == "127.0.0.1"
        client = StudioClient(f"http://{host}:{port}")
        client.op("write", text="白日依山尽")
        st = client.op("alternatives", k=2)
        assert st["candidates"] and all(len(c["text"]) == 6 for c in st["candidates"])
    finally:
        made[0].shutdown()
        t.join(10)
    assert result["rc"] == 0 and f"open http://127.0.0.1:{port}/" in capsys.readouterr().err
    saved = Session.open(tmp_path / "s.json", StubGenerator())
    assert [r["op"] for r in saved.log] == ["write", "alternatives"] and saved.text == "白日依山尽，"
