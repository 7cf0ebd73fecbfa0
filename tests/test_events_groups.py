"""gan_writer.analysis.events.group_tags: every metric key the README lists lands in a plot group
(notebook 02 shows the groups), none is left out."""
import re
from pathlib import Path

from gan_writer.analysis.events import OTHER_GROUP, group_tags

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_keys() -> list[str]:
    """The keys of the README's "Metric keys" table, ranges (`bleu_2` … `bleu_5`) expanded."""
    section = README.read_text(encoding="utf-8").split("## Metric keys", 1)[1].split("\n## ", 1)[0]
    keys = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        names = re.findall(r"`([a-z]+/[a-z_0-9]+)`", cell)
        if "…" in cell and len(names) == 2:
            stem, lo = re.match(r"(.*_)(\d+)$", names[0]).groups()
            names = [f"{stem}{n}" for n in range(int(lo), int(names[1].rsplit("_", 1)[1]) + 1)]
        keys += names
    return keys


def test_every_readme_key_is_plotted_in_a_group():
    keys = readme_keys()
    assert len(keys) > 30 and "adv/kl_to_mle" in keys and "metrics/form_tone_ok" in keys
    shown = {t for tags in group_tags(keys).values() for t in tags}
    dropped = {k for k in keys if k == "epoch" or k.endswith("seconds")}
    assert set(keys) - shown == dropped


def test_groups_by_kind_and_unknown_tags_go_to_other():
    groups = group_tags(["metrics/form_rhyme_ok", "metrics/empty_samples", "metrics/bleu_3", "adv/kl_to_mle",
                         "val/nll_test", "epoch", "metrics/seconds", "mine/custom"])
    assert groups["forms"] == ["metrics/form_rhyme_ok"] and groups["samples"] == ["metrics/empty_samples"]
    assert groups["quality (BLEU)"] == ["metrics/bleu_3"] and groups["NLL metrics"] == ["val/nll_test"]
    assert groups["adversarial (KL to MLE, gradients, advantages)"] == ["adv/kl_to_mle"]
    assert groups[OTHER_GROUP] == ["mine/custom"] and list(groups)[-1] == OTHER_GROUP
