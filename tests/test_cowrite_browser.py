"""The studio end to end in a real headless browser (Debian's chromium + chromedriver, Selenium):
type a beginning, ask for alternatives, pick one, undo, export; assert on the page; screenshot.

Skipped only when chromium, chromedriver or selenium is absent (``.ci/run`` installs them).
With ``GAN_WRITER_STUDIO_CKPT=<checkpoint>`` and ``GAN_WRITER_STUDIO_SHOT=<png>`` the real-checkpoint
test co-writes a wujue line by line and saves the README's screenshot there.
"""
import os
import shutil

import pytest
import torch
from helpers import tiny_gpt2

from gan_writer.checkpoint import Artifacts
from gan_writer.cowrite.generator import ModelGenerator
from gan_writer.cowrite.server import serve_in_thread
from gan_writer.cowrite.session import Session
from gan_writer.tokenization import char_tokenizer

HANZI = "白日依山尽黄河入海流欲穷千里目更上一层楼月落乌啼霜满天江枫渔火对愁眠，。"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium==4.43.0)")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium/chromedriver not found (apt-get install -y chromium chromium-driver)")


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def serve(art, tmp_path, **kw):
    session = Session(ModelGenerator(art), "poem", "wujue", path=tmp_path / "session.json", **kw)
    return session, *serve_in_thread(session)


def wait_for(driver, cond, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: cond(d))


def spans(driver):
    """The document's span texts as the page shows them (read in one script: the list is re-rendered)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#document li')].map(li => li.children[1].textContent)")


def candidates(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#candidates .cand-text')].map(e => e.textContent)")


def idle(driver):
    return driver.execute_script("return document.body.dataset.busy") != "1"


def click(driver, element_id):
    from selenium.webdriver.common.by import By

    wait_for(driver, idle)
    driver.find_element(By.ID, element_id).click()
    wait_for(driver, idle)


def test_studio_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    tok = char_tokenizer([HANZI])
    art = Artifacts(tiny_gpt2(vocab=len(tok), seed=0, n_positions=32).eval(), tok, {"metric_tokenization": "char"})
    session, server, url = serve(art, tmp_path, seed=5)
    try:
        browser.get(url + "/")
        assert browser.title == "gan-writer studio" and spans(browser) == []
        browser.find_element(By.ID, "beginning").send_keys("白日依山尽")
        click(browser, "write")
        wait_for(browser, lambda d: spans(d) == ["白日依山尽，"])
        click(browser, "more")
        wait_for(browser, lambda d: len(candidates(d)) >= 2)
        cands = candidates(browser)
        assert all(len(c) == 6 and c.endswith("。") for c in cands)
        reports = browser.execute_script(
            "return [...document.querySelectorAll('#candidates .report')].map(e => e.textContent)")
        assert sum("平仄" in r for r in reports) == len(cands) and sum(r == "safety: ok" for r in reports) == len(cands)
        browser.find_elements(By.CSS_SELECTOR, "#candidates .pick")[1].click()
        wait_for(browser, lambda d: spans(d) == ["白日依山尽，", cands[1]])
        assert candidates(browser) == [] and "model · seed" in browser.find_element(By.ID, "document").text
        click(browser, "undo")
        wait_for(browser, lambda d: spans(d) == ["白日依山尽，"] and candidates(d) == cands)
        browser.find_elements(By.CSS_SELECTOR, "#candidates .pick")[0].click()
        wait_for(browser, lambda d: spans(d) == ["白日依山尽，", cands[0]])
        click(browser, "export")
        preview = wait_for(browser, lambda d: d.find_element(By.ID, "export-preview").text)
        assert preview.startswith("白日依山尽，  \n" + cands[0] + "  \n") and "1 of 2 spans written by the model" in preview
        assert browser.find_element(By.ID, "download").get_attribute("download") == "session.md"
        assert session.text == "白日依山尽，\n" + cands[0]
        shot = tmp_path / "studio.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        # rewrite line 2 steered towards 月, then two alternative endings as siblings
        for field, value in (("ra", "2"), ("rb", "2"), ("rk", "月")):
            browser.find_element(By.ID, field).clear()
            browser.find_element(By.ID, field).send_keys(value)
        click(browser, "rewrite")
        wait_for(browser, lambda d: len(candidates(d)) >= 1)
        assert "replaces spans 2-2" in browser.find_element(By.ID, "candidates").text
        new_line = candidates(browser)[0]
        browser.find_elements(By.CSS_SELECTOR, "#candidates .pick")[0].click()
        wait_for(browser, lambda d: spans(d) == ["白日依山尽，", new_line])
        browser.find_element(By.ID, "n").clear()
        browser.find_element(By.ID, "n").send_keys("2")
        click(browser, "ending")
        wait_for(browser, lambda d: len(spans(d)) == 4)
        endings = session.state["branch"]["siblings"]
        assert len(endings) == 2 and spans(browser)[2:] == [x["text"] for x in endings[0]]
        second = [b for b in browser.find_elements(By.CSS_SELECTOR, "#endings button") if b.text.startswith("Ending 2")]
        second[0].click()
        wait_for(browser, lambda d: spans(d)[2:] == [x["text"] for x in endings[1]])
        assert "Ending 2 (shown)" in browser.find_element(By.ID, "endings").text
    finally:
        server.shutdown()
        server.server_close()


def test_real_checkpoint_wujue_screenshot(browser, tmp_path, tmp_path_factory, shared_data):
    """Co-write a wujue line by line with a trained checkpoint: GAN_WRITER_STUDIO_CKPT, or else the
    small `shi` MLE run the compare tests train (tests/test_compare.py); the screenshot goes to
    GAN_WRITER_STUDIO_SHOT."""
    from selenium.webdriver.common.by import By
    from test_compare import build_shared

    from gan_writer.checkpoint import load_artifacts

    ckpt = os.environ.get("GAN_WRITER_STUDIO_CKPT") or build_shared(tmp_path_factory)["mle"]
    torch.manual_seed(0)
    session, server, url = serve(load_artifacts(ckpt), tmp_path, seed=1)
    try:
        browser.get(url + "/")
        browser.find_element(By.ID, "beginning").send_keys("白日依山尽")
        click(browser, "write")
        click(browser, "more")
        wait_for(browser, lambda d: len(candidates(d)) == 3)
        browser.find_elements(By.CSS_SELECTOR, "#candidates .pick")[0].click()
        wait_for(browser, lambda d: len(spans(d)) == 2)
        click(browser, "next")
        wait_for(browser, lambda d: len(spans(d)) == 3)
        click(browser, "more")
        wait_for(browser, lambda d: len(candidates(d)) == 3)
        lines = spans(browser)
        assert [len(x) for x in lines] == [6, 6, 6] and all(len(c) == 6 for c in candidates(browser))
        click(browser, "export")
        shot = os.environ.get("GAN_WRITER_STUDIO_SHOT") or str(tmp_path / "studio.png")
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        assert browser.save_screenshot(shot)
    finally:
        server.shutdown()
        server.server_close()


def test_progress_and_cancel_on_the_page(browser, tmp_path):
    """A slow generation shows its progress on the page; Cancel stops it and the document is unchanged."""
    from cowrite_stub import StubGenerator
    from selenium.webdriver.common.by import By
    from test_cowrite_server import SlowGenerator

    session = Session(SlowGenerator(steps=2000), "poem", "wujue", path=tmp_path / "s.json")
    server, url = serve_in_thread(session)
    try:
        browser.get(url + "/")
        browser.find_element(By.ID, "more").click()
        wait_for(browser, lambda d: float(d.find_element(By.ID, "progress").get_attribute("value")) >= 3, timeout=20)
        assert "alternatives" in browser.find_element(By.ID, "busy").text
        browser.find_element(By.ID, "cancel").click()
        wait_for(browser, lambda d: "cancelled" in d.find_element(By.ID, "message").text, timeout=20)
        assert candidates(browser) == [] and session.log == []
        assert Session.open(tmp_path / "s.json", StubGenerator()).log == []
    finally:
        server.shutdown()
        server.server_close()


def test_word_level_text_reads_as_written_on_the_page(browser, tmp_path):
    """A word-level model's text ("the sea , and ' truth '") is shown as a writer reads it
    ("the sea, and 'truth'") in the document and the candidates; the session keeps the model's."""
    from selenium.webdriver.common.by import By

    from gan_writer.tokenization import word_tokenizer
    from gan_writer.writing.readable import readable

    tok = word_tokenizer(["the sea , and the sky ; o ' er the day . what ? a ( long ) way !"])
    art = Artifacts(tiny_gpt2(vocab=len(tok), seed=0, n_positions=96).eval(), tok, {"metric_tokenization": "word"})
    session = Session(ModelGenerator(art), "story", None, path=tmp_path / "story.json", seed=3)
    server, url = serve_in_thread(session)
    try:
        browser.get(url + "/")
        click(browser, "more")
        wait_for(browser, lambda d: len(candidates(d)) >= 2)
        raw = [c["text"] for c in session.candidates]
        assert any(readable(t) != t for t in raw)  # the model's spacing differs from a writer's
        assert candidates(browser) == [readable(t) for t in raw]
        browser.find_elements(By.CSS_SELECTOR, "#candidates .pick")[0].click()
        wait_for(browser, lambda d: len(spans(d)) == 1)
        assert spans(browser) == [readable(raw[0])] and session.spans[0]["text"] == raw[0]
    finally:
        server.shutdown()
        server.server_close()


def test_a_script_with_a_cast_shows_it_and_the_model_speaks_as_one_of_them(browser, tmp_path):
    """The logline and cast above the document; the model's line is ``NAME: speech`` by a listed
    character other than the writer's speaker; a session without a cast shows no cast block."""
    from selenium.webdriver.common.by import By

    from gan_writer.tokenization import word_tokenizer
    from gan_writer.writing.script import speaker_of

    tok = word_tokenizer(["anna : where is the boat ? ben : by the river , under the old tree . the night was cold"])
    art = Artifacts(tiny_gpt2(vocab=len(tok), seed=0, n_positions=96).eval(), tok, {"metric_tokenization": "word"})
    cast = [("anna", "a sailor"), ("ben", "her brother <b>")]
    session = Session(ModelGenerator(art, passage_tokens=8), "script", None, path=tmp_path / "play.json",
                      logline="a sailor comes home", characters=cast)
    session.write("anna: where is the boat ?")
    server, url = serve_in_thread(session)
    try:
        browser.get(url + "/")
        wait_for(browser, lambda d: len(spans(d)) == 1)
        block = browser.find_element(By.ID, "cast")
        assert block.is_displayed()
        assert block.find_element(By.CLASS_NAME, "logline").text == "a sailor comes home"
        assert [e.text for e in block.find_elements(By.CLASS_NAME, "character")] == [
            "anna — a sailor", "ben — her brother <b>"]  # shown as text, never as markup
        click(browser, "next")
        wait_for(browser, lambda d: len(spans(d)) == 2)
        line = spans(browser)[1]
        assert speaker_of(line, ["anna", "ben"]) == "ben" and line.split(":", 1)[1].strip()
    finally:
        server.shutdown()
        server.server_close()
    plain = Session(ModelGenerator(art), "script", None)
    server, url = serve_in_thread(plain)
    try:
        browser.get(url + "/")
        wait_for(browser, lambda d: d.execute_script("return document.getElementById('opcount').textContent") != "")
        assert not browser.find_element(By.ID, "cast").is_displayed()
    finally:
        server.shutdown()
        server.server_close()
