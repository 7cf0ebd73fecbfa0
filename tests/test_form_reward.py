"""The form term of the adversarial reward: a pure function of token ids, in [0, 1]."""
import pytest
import torch

from gan_writer.tokenization import char_tokenizer
from gan_writer.writing.forms import form_report
from gan_writer.writing.rerank import form_score
from gan_writer.adversarial.form_reward import form_reward, with_form_reward

DENG = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
BROKEN = "白日依山尽，黄河入海流。欲穷千里，更上一层楼。"
OFF = "白日依山尽，黄海入海流。欲穷千里目，更上一层山。"


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer([DENG + OFF])


def _ids(tok, texts):
    rows = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    width = max(map(len, rows))
    return torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])


def test_form_reward_ranks_the_real_poem_first(tok):
    ids = _ids(tok, [DENG, BROKEN, OFF])
    r = form_reward(ids, tok, "wujue", tok.eos_token_id)
    assert r.shape == (3,) and r.dtype == torch.float32
    assert r[0] == 1.0 and r[1] == 0.0 and 0.0 < r[2] < 1.0
    assert r[2].item() == pytest.approx(form_score(form_report(OFF, "wujue")))


def test_tokens_after_eos_are_ignored(tok):
    ids = _ids(tok, [DENG])
    tail = torch.tensor([tok(OFF[:5], add_special_tokens=False)["input_ids"]])
    assert form_reward(torch.cat([ids, tail], 1), tok, "wujue", tok.eos_token_id)[0] == 1.0


def test_mixed_reward(tok):
    ids = _ids(tok, [DENG, BROKEN])
    mask = torch.ones_like(ids)
    disc = lambda i, m: torch.full((i.size(0),), 0.2)  # noqa: E731
    mixed = with_form_reward(disc, tok, "wujue", 0.5, tok.eos_token_id)
    assert mixed(ids, mask).tolist() == pytest.approx([0.6, 0.1])
    assert with_form_reward(disc, tok, "wujue", 0.0, tok.eos_token_id) is disc
    with pytest.raises(ValueError, match="form_reward_weight"):
        with_form_reward(disc, tok, "wujue", 1.5, tok.eos_token_id)
    with pytest.raises(ValueError, match="unknown form"):
        with_form_reward(disc, tok, "tanka", 0.5, tok.eos_token_id)
