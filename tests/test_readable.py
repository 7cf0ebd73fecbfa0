"""Word-level output as a writer reads it: punctuation against its word, apostrophes inside
words; lossless for the word tokenizer (the readable text encodes to the same ids)."""
import pytest

from gan_writer.tokenization import bpe_tokenizer, char_tokenizer, word_tokenizer
from gan_writer.writing.readable import readable, readable_for


@pytest.fixture(scope="module")
def sonnet_lines(shared_data):
    text = (shared_data / "poetry_en" / "sonnets" / "sonnet_train.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.replace("\n", " ").split("<eos>") if ln.strip()][:3000]


def test_examples_from_a_user_trial():
    assert readable("o ' er the sea , and ‘ truth ’ .") == "o'er the sea, and ‘truth’."
    assert readable("gleaming , all\nheav ’ n ( yes ) is wide !") == "gleaming, all\nheav’n (yes) is wide!"
    assert readable("a man ' s day ; then — night") == "a man's day; then — night"
    assert readable("  no change here  \n\nat all") == "no change here\n\nat all"


def test_readable_text_encodes_to_the_same_ids_on_real_sonnets(sonnet_lines):
    tok = word_tokenizer(sonnet_lines)
    changed = 0
    for line in sonnet_lines[:2000]:
        ids = tok(line, add_special_tokens=False).input_ids
        shown = readable(tok.decode(ids))
        changed += shown != tok.decode(ids)
        assert tok(shown, add_special_tokens=False).input_ids == ids, shown
    assert changed > 1000  # most sonnet lines have punctuation to join


def test_only_the_word_tokenizer_output_is_changed(sonnet_lines):
    text = "o ' er the sea , and"
    assert readable_for(word_tokenizer(sonnet_lines[:50]), text) == "o'er the sea, and"
    assert readable_for(char_tokenizer(["白日依山尽，"]), text) == text
    assert readable_for(bpe_tokenizer(sonnet_lines[:200], vocab_size=300), text) == text
    assert readable_for(None, text) == text


def test_write_and_cowrite_show_readable_text_and_keep_the_model_text_in_json(tmp_path, capsys, monkeypatch):
    import io
    import json

    import torch

    from gan_writer.checkpoint import payload
    from gan_writer.cli import main
    from helpers import tiny_gpt2

    corpus = ["the sea , the sky ; o ' er the hills .", "a man ' s day , and night !", "( yes ) it is so ."]
    tok = word_tokenizer(corpus)
    gen = tiny_gpt2(vocab=len(tok), seed=0, n_positions=48)
    ckpt = tmp_path / "en.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                "gan_writer": payload(gen, tok, max_length=40, metric_tokenization="word")}, ckpt)
    story = ["write", "story", "--ckpt", str(ckpt), "--beginning", "the sea, the sky", "--endings", "4",
             "--candidates", "8", "--length", "12", "--seed", "3"]
    assert main(story + ["--json"]) == 0
    raw = [e["text"] for e in json.loads(capsys.readouterr().out)]
    assert main(story) == 0
    shown = [ln for ln in capsys.readouterr().out.splitlines() if ln and not ln.startswith(("==", "endings:"))]
    assert shown == [readable(t) for t in raw]
    assert any(" ," in t or " ." in t or " ;" in t or " !" in t for t in raw)  # the model's spacing, in JSON
    assert not any(" ," in t or " ." in t or " ;" in t or " !" in t for t in shown)

    session = tmp_path / "s.json"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"the sea , the sky .\n:next\n:export {tmp_path / 'out.txt'}\n:quit\n"))
    assert main(["cowrite", "--ckpt", str(ckpt), "--session", str(session), "--kind", "story"]) == 0
    exported = (tmp_path / "out.txt").read_text(encoding="utf-8").strip()
    kept = json.loads(session.read_text())
    text = "".join(sp["text"] for sp in kept["states"][kept["pos"]]["spans"])
    assert exported == readable(text).strip() and exported.startswith("the sea, the sky.")
