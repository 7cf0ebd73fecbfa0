"""gan_writer.analysis.copies: a sample equal to a corpus text is found as a copy also when the
word tokenizer decodes it with spaced punctuation (notebook 04's copy check)."""
from gan_writer.analysis.copies import copy_checker, copy_checker_for
from gan_writer.data import load_corpus
from gan_writer.data.datamodule import TextDataModule
from gan_writer.metrics.text_tokenize import MetricTokenizer


def test_a_decoded_coco_caption_is_a_copy_of_its_caption(shared_data):
    caption = "some food sits in a pot in a kitchen."
    assert caption in load_corpus("coco", data_dir=str(shared_data)).train
    tok = TextDataModule(corpus="coco", tokenizer="word", max_length=40, batch_size=8, max_train_samples=500).tokenizer
    decoded = tok.decode(tok.encode(caption), skip_special_tokens=True)
    assert decoded != caption and " ".join(decoded.split()) != caption  # what the old string check compared
    setup = {"kind": "text", "reference_key": {"corpus": "coco", "metric_tokenization": "word",
                                               "metric_lowercase": False}}
    is_copy = copy_checker_for(setup, str(shared_data))
    assert is_copy(decoded) and is_copy(caption)
    assert not is_copy("some food sits in a pot in a kitchen . sink")
    assert not is_copy("") and not copy_checker_for({"kind": "oracle"})(caption)


def test_chinese_characters_and_lowercase():
    is_copy = copy_checker(["白日依山尽，黄河入海流。"], MetricTokenizer("char"))
    assert is_copy("白日依山尽 ， 黄河入海流 。") and not is_copy("白日依山尽，黄河入海")
    lower = copy_checker(["A Dog."], MetricTokenizer("word", lowercase=True))
    assert lower("a dog .") and not copy_checker(["A Dog."], MetricTokenizer("word"))("a dog .")
