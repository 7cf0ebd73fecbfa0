"""write poem / story: a nan or inf temperature is refused (was sampled into empty poems), and a
--candidates too large to sample at once is refused in one line (was an allocator traceback)."""
import pytest
import torch

from gan_writer.sampling import sample_from_logits
from gan_writer.writing.poem import write_poems
from gan_writer.writing.story import MAX_DRAFTS, write_endings


@pytest.mark.parametrize("t", [float("nan"), float("inf"), 0.0, -1.0])
def test_non_finite_temperature_refused(t):
    with pytest.raises(ValueError, match="finite number > 0"):
        sample_from_logits(torch.zeros(2, 5), temperature=t)


def test_too_many_candidates_refused_before_sampling():
    with pytest.raises(ValueError, match=f"at most {MAX_DRAFTS}"):
        write_poems(None, "quatrain", None, [], "", 1, 10**8)
    with pytest.raises(ValueError, match=f"at most {MAX_DRAFTS}"):
        write_endings(None, "Once upon a time", 3, 10, 10**8)


@pytest.mark.parametrize("spec", ["A\x0bB: x", "A\tB: y", "X" * 41 + ": z"])
def test_character_names_must_be_one_short_printable_line(spec):
    from gan_writer.writing.script import parse_characters

    with pytest.raises(ValueError, match="one printable line"):
        parse_characters(spec)
    with pytest.raises(ValueError, match="entry 'A' has no 'NAME:'"):  # a line break separates entries
        parse_characters("A\nB: x")
    assert parse_characters("ANNA: a; BOB O'NEIL: b") == [("ANNA", "a"), ("BOB O'NEIL", "b")]
