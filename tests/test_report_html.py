"""`w2v report`'s page: what it embeds (checked in Python) and what it does in a real browser.

The browser tests drive headless Chromium through selenium (Debian's chromium and chromium-driver,
which .ci/run installs); without them they are skipped, saying why. They leave a screenshot of the
page in tests/artifacts/report-page.png for people to look at.
"""

import base64
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from w2v.cli import main
from w2v.config import Config
from w2v.evaluate import Vectors
from w2v.run import train

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A small real run: the first 30,000 words of the demo text, 3 epochs (about a second)."""
    base = tmp_path_factory.mktemp("report")
    corpus = base / "tiny.txt"
    corpus.write_text(" ".join((ROOT / "data" / "demo.txt").read_text().split()[:30000]) + "\n")
    out = base / "run"
    train([str(corpus)], Config(dim=24, window=4, min_count=4, epochs=3, workers=1, cache_dir="", seed=3), out,
          show_progress=False)
    return out


@pytest.fixture(scope="module")
def page(tiny_run):
    """The page of the whole vocabulary (so its neighbours are w2v similar's), with a t-SNE map."""
    pytest.importorskip("openTSNE")
    result = invoke("report", tiny_run, "--words", 100000)
    assert result.exit_code == 0, result.output
    return tiny_run / "report.html"


def page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    raw = re.search(r'<script type="application/json" id="w2v-data">(.*?)</script>', text, re.S).group(1)
    return json.loads(raw)


def decoded_units(data: dict) -> np.ndarray:
    f16 = np.frombuffer(base64.b64decode(data["vectors_f16"]), "<f2").reshape(data["n"], data["dim"])
    units = f16.astype(np.float64)
    return units / np.linalg.norm(units, axis=1, keepdims=True)


# ---------------------------------------------------------------- the file (no browser)

def test_page_holds_the_run_and_nothing_from_outside(page, tiny_run):
    text = page.read_text(encoding="utf-8")
    data = page_data(page)
    words = Vectors.load(tiny_run / "vectors.txt").words
    assert data["words"] == words and data["n"] == data["vocab_size"] == len(words)
    assert data["map_method"] == "tsne" and "t-SNE" in data["map_note"]
    assert [r["words"] for r in data["records"]] == [json.loads(x)["words"] for x in
                                                     (tiny_run / "log.jsonl").read_text().splitlines()]
    assert data["config"]["dim"] == 24 and data["state"] == "finished"
    assert dict(data["figures"])["words trained"] == f"{data['records'][-1]['words']:,}"
    # nothing loads from elsewhere: no src= or href= but the empty data: icon, no fetch or XHR
    assert re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text) == ["data:,"]
    assert not re.search(r"\bfetch\(|XMLHttpRequest|import\(|https?://", text)
    for id_ in ("search", "neighbours", "analogy-a", "analogy-b", "analogy-c", "analogy-result", "message", "map"):
        assert f'id="{id_}"' in text


def test_float16_rounding_moves_scores_by_far_less_than_the_shown_decimals(page, tiny_run):
    """The page's vectors against the file's: cosines within 1e-3 (rounding to float16 changes
    each by about 1e-4), so the neighbours shown to 3 decimals are w2v similar's."""
    vecs = Vectors.load(tiny_run / "vectors.txt")
    units = decoded_units(page_data(page))
    exact = (vecs.vectors / vecs.norms[:, None]).astype(np.float64)
    rows = np.arange(0, len(units), 7)
    err = np.abs(units[rows] @ units.T - exact[rows] @ exact.T)
    assert err.max() < 1e-3 and np.median(err) < 2e-4


@pytest.fixture(scope="module")
def crowded_page(tmp_path_factory):
    """Random vectors, whose neighbours' scores lie close together: float16 alone would order
    some of them otherwise than the float32 file."""
    from w2v.io import write_word2vec_text

    base = tmp_path_factory.mktemp("crowded")
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(3000)]
    write_word2vec_text(base / "vectors.txt", words, rng.standard_normal((3000, 32)).astype(np.float32))
    result = invoke("report", base / "vectors.txt", "--output", base / "page.html", "--map", "pca")
    assert result.exit_code == 0, result.output
    return base / "vectors.txt", base / "page.html"


def test_where_float16_would_reorder_neighbours_the_page_holds_the_exact_list(crowded_page):
    """The page's search, done here as its script does it, lists every word's 10 nearest exactly
    as w2v similar (Vectors.most_similar) does."""
    vectors, page = crowded_page
    data = page_data(page)
    vecs = Vectors.load(vectors)
    units = decoded_units(data)
    assert 10 <= len(data["exact"]) < 600  # some, not most
    for i, word in enumerate(vecs.words):
        expected = vecs.most_similar(word, 10)
        if str(i) in data["exact"]:
            got = [(vecs.words[j], s) for j, s in data["exact"][str(i)]]
        else:
            sims = units @ units[i]
            sims[i] = -np.inf
            got = [(vecs.words[j], sims[j]) for j in np.argsort(-sims)[:10]]
        assert [w for w, _ in got] == [w for w, _ in expected], word
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=2e-4)


def test_words_limits_the_page_and_a_vectors_file_alone_needs_output(tiny_run, tmp_path):
    out = tmp_path / "page.html"
    result = invoke("report", tiny_run / "vectors.txt", "--output", out, "--words", 50, "--map", "pca")
    assert result.exit_code == 0, result.output
    data = page_data(out)
    assert data["n"] == 50 and data["vocab_size"] > 50 and data["records"] == [] and data["config"] is None
    assert data["map_method"] == "pca" and data["counts"][0] >= data["counts"][1]  # vocab.txt beside it
    assert not list(tmp_path.glob(".*tmp"))  # written to a temporary name, then renamed
    result = invoke("report", tiny_run / "vectors.txt")
    assert result.exit_code != 0 and result.output.startswith("w2v: error: ") and "--output" in result.output
    result = invoke("report", tmp_path / "nothing-here")
    assert result.exit_code != 0 and result.output.count("\n") == 1 and "does not exist" in result.output


def test_a_run_still_training_shows_its_checkpoint_or_partial_vectors(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in ("vectors.txt", "report.html", "report.png"):
        (run / name).unlink(missing_ok=True)
    result = invoke("report", run, "--map", "pca")
    assert result.exit_code == 0, result.output
    data = page_data(run / "report.html")
    assert data["vectors_from"] == "checkpoint.npz" and "unfinished" in data["state"]
    fcntl = pytest.importorskip("fcntl")
    fd = os.open(run, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running w2v train holds
        result = invoke("report", run, "--map", "pca")
        assert result.exit_code == 0, result.output
        assert page_data(run / "report.html")["state"] == "training now: the vectors of checkpoint.npz"
    finally:
        os.close(fd)
    assert data["words"][:10] == Vectors.load(tiny_run / "vectors.txt").words[:10]
    (run / "checkpoint.npz").unlink()
    shutil.copy(tiny_run / "vectors.txt", run / "vectors.partial.txt")
    with open(run / "log.jsonl", "a") as fh:
        fh.write('{"words": 5, "epo')  # the half line of a run killed while writing it
    result = invoke("report", run, "--map", "pca")
    assert result.exit_code == 0, result.output
    data = page_data(run / "report.html")
    assert data["vectors_from"] == "vectors.partial.txt" and "stopped" in data["state"] and data["records"]
    (run / "vectors.partial.txt").unlink()
    result = invoke("report", run)
    assert result.exit_code != 0 and "holds no vectors yet" in result.output and result.output.count("\n") == 1


def test_no_html_keeps_only_the_png(tiny_run, tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "report.html").unlink(missing_ok=True)
    result = invoke("report", run, "--no-html")
    assert result.exit_code == 0, result.output
    assert (run / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (run / "report.html").exists()
    result = invoke("report", run, "--no-html", "--output", run / "page.html")
    assert result.exit_code != 0 and "--no-html writes only the PNG" in result.output


def test_without_the_report_extra_the_map_is_pca_and_says_so(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openTSNE", None)  # import openTSNE now raises ImportError
    out = tmp_path / "p.html"
    result = invoke("report", tiny_run / "vectors.txt", "--output", out)
    assert result.exit_code == 0, result.output
    data = page_data(out)
    assert data["map_method"] == "pca" and "install the report extra" in data["map_note"]
    result = invoke("report", tiny_run / "vectors.txt", "--output", out, "--map", "tsne")
    assert result.exit_code != 0 and "openTSNE" in result.output and result.output.startswith("w2v: error:")


def test_eval_results_come_with_eval_or_from_eval_json(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    result = invoke("report", run, "--map", "pca", "--eval")
    assert result.exit_code == 0, result.output
    got = page_data(run / "report.html")["eval"]
    assert got["analogies"][0]["file"].endswith("questions-words.txt") and got["similarity"]
    cli = json.loads(invoke("eval", run / "vectors.txt", "--json").output)
    assert got["analogies"][0]["correct"] == cli["analogies"][0]["correct"]
    (run / "eval.json").write_text(json.dumps(cli))
    result = invoke("report", run, "--map", "pca")
    assert page_data(run / "report.html")["eval"]["similarity"][0]["pairs"] == cli["similarity"][0]["pairs"]


# ---------------------------------------------------------------- in a real browser

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def browser(short_temp_root):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    chrome = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver_path = shutil.which("chromedriver")
    if not chrome or not driver_path:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium.webdriver.chrome.service import Service

    # under a long TMPDIR the paths of Chromium's sockets pass AF_UNIX's 107 bytes: it would not start
    profile = tempfile.mkdtemp(prefix="w2v-chromium-", dir=short_temp_root)
    opts = webdriver.ChromeOptions()
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.binary_location = chrome
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # Chromium's singleton socket goes under TMPDIR too (linked from the profile)
    service = Service(driver_path, env={**os.environ, "TMPDIR": short_temp_root})
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def loaded(browser, page):
    browser.get_log("performance")  # what the browser did before the page
    browser.get(page.as_uri())
    browser.find_element("id", "map")
    return browser


def cli_list(output: str) -> list[tuple[str, float]]:
    """'word: a 0.123, b 0.456' (w2v similar) or 'a : b :: c : x 0.5, ...' (w2v analogy)."""
    tail = output.strip().rsplit(": ", 1)[1]
    return [(w, float(s)) for w, s in (item.rsplit(" ", 1) for item in tail.split(", "))]


def shown(driver, selector) -> list[tuple[str, float]]:
    return [(li.get_attribute("data-word"), float(li.get_attribute("data-score")))
            for li in driver.find_elements("css selector", selector)]


def test_page_loads_from_file_with_no_console_error_and_no_request(loaded, page):
    severe = [e for e in loaded.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert severe == []
    assert loaded.execute_script("return performance.getEntriesByType('resource').length") == 0
    events = [json.loads(e["message"])["message"] for e in loaded.get_log("performance")]
    sent = [m["params"] for m in events if m["method"] == "Network.requestWillBeSent"]
    # the page's own requests: itself, nothing else (the browser's start page loads chrome:// files,
    # and from Chromium 150 on chrome-untrusted:// ones, which a file:// page cannot request)
    assert {p["request"]["url"] for p in sent if p.get("documentURL") == page.as_uri()} == {page.as_uri()}
    browser_own = ("chrome:", "chrome-untrusted:", "data:")
    assert not [p["request"]["url"] for p in sent if not p["request"]["url"].startswith(browser_own)
                and p["request"]["url"] != page.as_uri()]
    assert loaded.execute_script("return window.w2vReport.index.size") == page_data(page)["n"]


def test_search_lists_exactly_w2v_similars_neighbours(loaded, tiny_run):
    box = loaded.find_element("id", "search")
    for word in ("whale", "ship", "captain"):
        expected = cli_list(invoke("similar", tiny_run / "vectors.txt", word).output)
        box.clear()
        box.send_keys(word)  # input events update the list as the word is typed
        got = shown(loaded, "#neighbours li")
        assert [w for w, _ in got] == [w for w, _ in expected], word
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=6e-4), word
        box.send_keys("\n")  # and Enter keeps it
        assert shown(loaded, "#neighbours li") == got
        assert loaded.find_element("id", "message").text == ""


def test_analogy_equals_w2v_analogy(loaded, tiny_run):
    a, b, c = "i", "me", "he"
    expected = cli_list(invoke("analogy", tiny_run / "vectors.txt", a, b, c).output)
    for id_, word in (("analogy-a", a), ("analogy-b", b), ("analogy-c", c)):
        el = loaded.find_element("id", id_)
        el.clear()
        el.send_keys(word)
    assert shown(loaded, "#analogy-result li") == []  # only Enter in the third box asks
    loaded.find_element("id", "analogy-c").send_keys("\n")
    got = shown(loaded, "#analogy-result li")
    assert [w for w, _ in got] == [w for w, _ in expected]
    assert np.allclose([s for _, s in got], [s for _, s in expected], atol=6e-4)


def test_an_unknown_word_says_so(loaded):
    box = loaded.find_element("id", "search")
    box.clear()
    box.send_keys("qwertyuiop\n")
    assert "'qwertyuiop' is not among the page's words" in loaded.find_element("id", "message").text
    assert loaded.find_elements("css selector", "#neighbours li") == []
    box.clear()
    box.send_keys("whale\n")
    assert loaded.find_element("id", "message").text == ""


def test_hovering_a_point_shows_its_word(loaded, page):
    from selenium.webdriver.common.action_chains import ActionChains

    words = page_data(page)["words"]
    points = np.array(loaded.execute_script("return arguments[0].map(w => window.w2vReport.screenOf(w))", words))
    canvas = loaded.find_element("id", "map-canvas")
    size = canvas.size
    inside = (points[:, 0] > 20) & (points[:, 1] > 20) & (points[:, 0] < size["width"] - 20) & \
             (points[:, 1] < size["height"] - 20)
    gaps = np.linalg.norm(points[:, None] - points[None], axis=2) + np.eye(len(points)) * 1e9
    candidates = np.flatnonzero(inside)
    for i in candidates[np.argsort(-gaps[candidates].min(axis=1))][:3]:  # the most isolated points
        x, y = points[i]
        ActionChains(loaded).move_to_element_with_offset(canvas, int(round(x - size["width"] / 2)),
                                                         int(round(y - size["height"] / 2))).perform()
        tip = loaded.find_element("id", "tooltip")
        assert tip.is_displayed() and tip.text == words[i]


def test_screenshot_for_people(loaded):
    box = loaded.find_element("id", "search")
    box.clear()
    box.send_keys("whale\n")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report-page.png"
    assert loaded.save_screenshot(str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    print(f"screenshot of the page: {path}")


def test_search_uses_the_exact_lists_where_float16_would_reorder(browser, crowded_page):
    """Runs last: it leaves the browser on another page."""
    vectors, page = crowded_page
    browser.get(page.as_uri())
    fixed = [page_data(page)["words"][int(i)] for i in list(page_data(page)["exact"])[:3]]
    box = browser.find_element("id", "search")
    for word in fixed:
        expected = cli_list(invoke("similar", vectors, word).output)
        box.clear()
        box.send_keys(word + "\n")
        got = shown(browser, "#neighbours li")
        assert [w for w, _ in got] == [w for w, _ in expected], word
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=6e-4), word
