"""npcnn explore (#23): the page in a real headless Chromium against a live
server on an ephemeral port (draw a stroke, click a map), the static export
from disk, the server's answers to bad requests, and a burst of requests."""
import argparse
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import bridge
from npcnn import deconv
from vis import explore_cmd, explore_server
from vis.explore_cmd import build_explorer, export_static
from vis.explore_model import softmax
from vis.explore_wire import MAX_BODY_BYTES, decode
from vis.page_check import CHROMEDRIVER, CHROMIUM, FLAGS

WAIT_S = 20   # the longest a page may take to answer on a loaded 2-core machine


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("explore") / "lenet5.pt"
    return bridge.save_checkpoint(path, bridge.torch_model("lenet5"), dataset="mnist5k")


@pytest.fixture(scope="module")
def explorer(checkpoint):
    return build_explorer(checkpoint, quick=True, top9=True)


@pytest.fixture(scope="module")
def server(explorer):
    server = explore_server.start(explorer)          # 127.0.0.1, port 0: any free port
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, script, what):
    """Poll a JS expression until it is truthy."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"the page did not {what} within {WAIT_S} s")


def settled(driver, counter, before):
    """Wait until ``explorer[counter]`` passed ``before`` and no request is in flight."""
    wait_for(driver, f"window.explorer && window.explorer.{counter} > {before} && !window.explorer.busy "
                     f"&& !window.explorer.again", "answer")


def severe(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def engine_input(explorer, pixels):
    return explorer.normalize(np.asarray(pixels, dtype=np.float64).reshape(1, 28, 28))


# -- the page, served ------------------------------------------------------------------------------

def test_drawing_a_stroke_changes_the_prediction(browser, server, explorer):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server.url)
    settled(browser, "predictions", 0)
    before = browser.execute_script("return window.explorer.response.probabilities;")
    count = browser.execute_script("return window.explorer.predictions;")
    pad = browser.find_element(By.ID, "pad")
    # a stroke across the middle of the pad (280 px wide), in pointer moves
    stroke = ActionChains(browser).move_to_element_with_offset(pad, -100, -20).click_and_hold()
    for _ in range(10):
        stroke.move_by_offset(20, 4)
    stroke.release().perform()
    settled(browser, "predictions", count)
    state = browser.execute_script("return {p: window.explorer.response.probabilities, "
                                   "sent: window.explorer.sent, now: Array.from(window.explorer.pixels), "
                                   "n: window.explorer.predictions};")
    assert state["n"] > count + 1, "the prediction is updated during the stroke, not only after it"
    assert state["sent"] == pytest.approx(state["now"], abs=0), "the last answer is for the finished drawing"
    assert not np.allclose(state["p"], before, atol=1e-4), "the stroke changed the probabilities"
    # and the page shows what the engine computes for the pixels it sent
    expected = softmax(explorer.model.forward(engine_input(explorer, state["sent"]))[0])
    np.testing.assert_allclose(state["p"], expected, rtol=1e-5, atol=1e-7)
    assert severe(browser) == []


def test_clicking_a_map_shows_its_projection_as_the_engine_computes_it(browser, server, explorer):
    from selenium.webdriver.common.by import By

    if not browser.current_url.startswith(server.url):
        browser.get(server.url)
        settled(browser, "predictions", 0)
    units = browser.execute_script("return window.explorer.units;")
    browser.find_element(By.CSS_SELECTOR, 'canvas[data-layer="pool_2"][data-channel="3"]').click()
    settled(browser, "units", units)
    unit = browser.execute_script("return window.explorer.unit;")
    assert (unit["layer"], unit["channel"], unit["select"]) == ("pool_2", 3, "map")
    x = engine_input(explorer, unit["pixels"])
    for key, rule in (("projection", "deconvnet"), ("guided", "guided")):
        expected = deconv.project(explorer.model, x, "pool_2", 3, rule=rule)[0, 0]
        got = np.asarray(unit[key], dtype=np.float32).reshape(28, 28)
        assert np.abs(expected).max() > 0, "a map that projects to nothing would prove nothing"
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max(), err_msg=rule)
    panel = browser.find_element(By.ID, "unit").text
    assert "deconvnet projection" in panel and "guided backprop" in panel and "conv_2" in panel
    assert len(browser.find_elements(By.CSS_SELECTOR, "#unit .pair")) == 9, "the top-9 patches"
    assert len(browser.get_screenshot_as_png()) > 10_000
    assert severe(browser) == []


def test_clicking_a_dense_bar_shows_its_weights_and_class_average(browser, server, explorer):
    from selenium.webdriver.common.by import By

    if not browser.current_url.startswith(server.url):
        browser.get(server.url)
        settled(browser, "predictions", 0)
    units = browser.execute_script("return window.explorer.units;")
    bars = browser.find_element(By.CSS_SELECTOR, 'canvas[data-layer="fc_3"]')
    # fc_3 has 10 units across the canvas: the 8th tenth from the left is unit 7
    click_at(browser, bars, 0.75)
    settled(browser, "units", units)
    unit = browser.execute_script("return window.explorer.unit;")
    assert (unit["layer"], unit["channel"], unit["projection"]) == ("fc_3", 7, None)
    panel = browser.find_element(By.ID, "unit").text
    assert "Incoming weights (fc_3, row 7)" in panel and "Class-wise average" in panel


def click_at(browser, element, fraction):
    """Click ``element`` at ``fraction`` of its width from the left, half-way down."""
    from selenium.webdriver.common.action_chains import ActionChains

    width = element.size["width"]
    ActionChains(browser).move_to_element_with_offset(element, int((fraction - 0.5) * width), 0).click().perform()


# -- the static export ------------------------------------------------------------------------------

def test_the_static_export_opens_from_disk_with_no_server_and_no_console_errors(browser, checkpoint, explorer,
                                                                               tmp_path):
    from selenium.webdriver.common.by import By

    started = time.perf_counter()
    index = export_static(checkpoint, tmp_path / "static")
    assert time.perf_counter() - started < 30, "npcnn demo calls it: seconds, not minutes"
    assert {p.name for p in index.parent.iterdir()} == {"index.html", "explore.css", "explore.js", "data.js"}
    browser.get(index.resolve().as_uri())
    settled(browser, "predictions", 0)
    assert severe(browser) == []
    browser.find_elements(By.CSS_SELECTOR, "#examples canvas")[3].click()
    browser.find_element(By.CSS_SELECTOR, 'canvas[data-layer="conv_2"][data-channel="5"]').click()
    unit = wait_for(browser, "window.explorer.unit && window.explorer.unit.layer === 'conv_2' "
                             "&& window.explorer.unit", "show the unit")
    assert browser.execute_script("return window.explorer.example;") == 3
    x = explorer.normalize(explorer.examples[3:4] / 255)
    expected = deconv.project(explorer.model, x, "conv_2", 5)[0, 0]
    np.testing.assert_allclose(np.reshape(unit["projection"], (28, 28)), expected, rtol=1e-5,
                               atol=1e-6 * np.abs(expected).max())
    assert "drawing needs the server" in browser.find_element(By.ID, "draw-note").text
    assert severe(browser) == []


# -- the server's answers --------------------------------------------------------------------------

def request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=WAIT_S)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def pixels(explorer, k=0):
    return (explorer.examples[k] / 255).ravel().tolist()


BAD = {
    "a wrong size": ("/api/predict", lambda e: {"pixels": [0.5] * 100}, "expected 784 numbers"),
    "a non-finite pixel": ("/api/predict", lambda e: b'{"pixels": [NaN' + b", 0" * 783 + b"]}",
                           "not a finite number"),
    "an infinite pixel": ("/api/predict", lambda e: b'{"pixels": [Infinity' + b", 0" * 783 + b"]}",
                          "not a finite number"),
    "a pixel outside 0..1": ("/api/predict", lambda e: {"pixels": [2] * 784}, "outside 0..1"),
    "a pixel that is text": ("/api/predict", lambda e: {"pixels": ["1"] * 784}, "expected a number"),
    "an unknown layer": ("/api/unit", lambda e: {"pixels": pixels(e), "layer": "conv_9", "channel": 0},
                         "not a layer of this network"),
    "a channel that does not exist": ("/api/unit", lambda e: {"pixels": pixels(e), "layer": "conv_1",
                                                              "channel": 6}, "has channels 0..5"),
    "a negative channel": ("/api/unit", lambda e: {"pixels": pixels(e), "layer": "fc_3", "channel": -1},
                           "has channels 0..9"),
    "a channel that is not an integer": ("/api/unit", lambda e: {"pixels": pixels(e), "layer": "conv_1",
                                                                 "channel": 1.5}, "expected an integer"),
    "an unknown selection": ("/api/unit", lambda e: {"pixels": pixels(e), "layer": "conv_1", "channel": 0,
                                                     "select": "all"}, "select"),
    "bad JSON": ("/api/predict", lambda e: b'{"pixels": [0,', "not JSON"),
    "JSON nested too deep": ("/api/predict", lambda e: b"[" * 50_000, "not JSON"),
    "JSON that is not an object": ("/api/predict", lambda e: b"[1, 2]", "a JSON object"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_request_gets_a_400_with_a_one_line_reason(server, explorer, case):
    path, body, reason = BAD[case]
    body = body(explorer)
    status, answer = request(server, "POST", path, body if isinstance(body, bytes) else json.dumps(body))
    error = json.loads(answer)["error"]
    assert status == 400 and reason in error and "\n" not in error, (status, error)
    assert request(server, "POST", "/api/predict", json.dumps({"pixels": pixels(explorer)}))[0] == 200


def test_a_body_over_the_limit_is_refused_unread(server, explorer):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=WAIT_S)
    connection.putrequest("POST", "/api/predict")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()                          # and not a byte of the body
    response = connection.getresponse()
    assert response.status == 400 and "over the limit" in json.loads(response.read())["error"]
    assert response.getheader("Connection") == "close"
    connection.close()
    status, answer = request(server, "POST", "/api/predict", "{}", {"Content-Length": "x"})
    assert status == 400 and "Content-Length" in json.loads(answer)["error"]


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/explore_page/index.html", "/index.html",
                                  "/%2e%2e/pyproject.toml", "/vis/explore_cmd.py", "//etc/passwd", "/api"])
def test_nothing_but_its_own_page_is_served(server, path):
    status, answer = request(server, "GET", path)
    assert status == 404 and b"no such page" in answer


def test_its_own_page_is_served(server):
    for path in ("/", "/explore.css", "/explore.js", "/data.js"):
        status, answer = request(server, "GET", path)
        assert status == 200 and len(answer) > 500, path
    assert request(server, "POST", "/api/other", "{}")[0] == 404


def resident_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_a_burst_of_1000_requests_is_answered_with_nothing_lost_and_memory_flat(server, explorer):
    """8 local clients, 125 requests each on a kept-alive connection: predictions,
    projections and bad requests mixed; every answer is the expected one, and
    the process holds no more memory after 1,000 than after the first 200."""
    good = json.dumps({"pixels": pixels(explorer, 1)})
    unit = json.dumps({"pixels": pixels(explorer, 2), "layer": "relu_2", "channel": 7})
    bad = json.dumps({"pixels": [0.5] * 783})
    plan = [("/api/predict", good, 200), ("/api/unit", unit, 200), ("/api/predict", bad, 400)]

    def client(requests):
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=WAIT_S)
        answered = []
        for k in range(requests):
            path, body, expected = plan[k % len(plan)]
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answered.append(response.status == expected and len(response.read()) > 0)
        connection.close()
        return answered

    with ThreadPoolExecutor(8) as pool:
        assert all(sum(pool.map(client, [25] * 8), []))           # 200 to warm up
        before = resident_kib()
        started = time.perf_counter()
        answered = sum(pool.map(client, [125] * 8), [])
        seconds = time.perf_counter() - started
    after = resident_kib()
    assert len(answered) == 1000 and all(answered), f"{answered.count(False)} lost or wrong"
    assert seconds < 60
    assert after - before < 8 * 1024, f"resident memory grew by {(after - before) / 1024:.1f} MiB"
    assert request(server, "GET", "/")[0] == 200, "and the server still answers"


# -- the command --------------------------------------------------------------------------------------

def parse(argv):
    parser = argparse.ArgumentParser(prog="npcnn")
    explore_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_command_says_where_it_listens_in_one_line(checkpoint, capsys):
    args = parse(["explore", "--checkpoint", str(checkpoint), "--port", "0"])
    assert args.host == "127.0.0.1"
    ready = threading.Event()
    servers = []

    def started(server):
        servers.append(server)
        ready.set()

    thread = threading.Thread(target=lambda: explore_server.serve(build_explorer(checkpoint, quick=True),
                                                                  args.host, args.port, started))
    thread.start()
    assert ready.wait(WAIT_S * 3)
    try:
        assert request(servers[0], "GET", "/")[0] == 200
    finally:
        servers[0].shutdown()
        thread.join(WAIT_S)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("npcnn explore:")]
    assert len(lines) == 1 and f"http://127.0.0.1:{servers[0].server_address[1]}/" in lines[0]
    assert "this machine only" in lines[0]


def test_static_needs_out_and_out_needs_static(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="--static needs --out"):
        explore_cmd.run(parse(["explore", "--checkpoint", str(checkpoint), "--static"]))
    with pytest.raises(ValueError, match="--out is for --static"):
        explore_cmd.run(parse(["explore", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x")]))
    assert not (tmp_path / "x").exists()


def test_the_latency_benchmark_validates_and_meets_the_target(checkpoint):
    from vis.explore_latency import measure

    times = measure(checkpoint, requests=20)
    assert set(times) == {"predict server", "predict round trip", "unit server", "unit round trip", "stroke"}
    assert 0 < times["predict server"]["p50"] <= times["predict server"]["p95"]
    assert times["predict server"]["p95"] <= 50, "#23's target: 50 ms server time at the 95th percentile"


def test_statistics_from_a_stats_file_are_shown_and_checked(checkpoint, explorer, tmp_path):
    from npcnn.data import load_mnist, to_tensor
    from npcnn.stats import ClassMeans, TopK, fill, save_stats

    train = load_mnist("mnist5k", "train", verbose=False)
    x = to_tensor(train.images[:600], dtype=explorer.model.dtype)
    stats = fill([ClassMeans(["relu_1", "pool_2"], 10), TopK("pool_2", 9)], explorer.model, x, train.labels[:600])
    save_stats(tmp_path / "stats.npz", stats)
    loaded = build_explorer(checkpoint, stats=tmp_path / "stats.npz")
    assert "stats.npz" in loaded.page_data()["top9"] and "stats.npz" in loaded.page_data()["class_means"]
    facts = loaded.facts("pool_2", 4)
    assert [p["id"] for p in facts["top9"]] == list(stats[1].result()[0][4])
    np.testing.assert_allclose(decode(facts["class_average"]), stats[0].result().means["pool_2"][:, 4],
                               rtol=1e-6)
    assert loaded.facts("conv_1", 0)["top9"] is None and loaded.facts("conv_1", 0)["class_average"] is None
    save_stats(tmp_path / "other.npz", [ClassMeans(["conv_9"], 10).add({"conv_9": np.ones((2, 3))}, [0, 1])])
    with pytest.raises(ValueError, match="do not fit lenet5"):
        build_explorer(checkpoint, stats=tmp_path / "other.npz")


def test_a_failure_of_its_own_is_a_500_with_one_line_and_the_server_goes_on(server, explorer, monkeypatch,
                                                                            capsys):
    def broken(image):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(explorer, "predict", broken)
    status, answer = request(server, "POST", "/api/predict", json.dumps({"pixels": pixels(explorer)}))
    assert status == 500 and json.loads(answer)["error"] == "internal error: RuntimeError: a bug"
    assert "RuntimeError: a bug" in capsys.readouterr().err
    monkeypatch.undo()
    assert request(server, "POST", "/api/predict", json.dumps({"pixels": pixels(explorer)}))[0] == 200


def test_a_body_shorter_than_its_content_length_is_a_400(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=WAIT_S) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b'{"pixels": []}')
        sock.shutdown(socket.SHUT_WR)                # the client sends no more
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400") and b"body ended after 14 of the 100 bytes" in answer


def test_ipv6_loopback_is_served_too(explorer):
    server = explore_server.start(explorer, "::1", 0)
    try:
        assert server.url.startswith("http://[::1]:")
        connection = http.client.HTTPConnection("::1", server.server_address[1], timeout=WAIT_S)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_a_loopback_server_refuses_other_host_names(server, host):
    """DNS rebinding: a page of another site whose name now points at 127.0.0.1."""
    for method, path, body in (("GET", "/data.js", None), ("POST", "/api/predict", b"{}")):
        status, answer = request(server, method, path, body, {"Host": host})
        assert status == 403 and b"answers to localhost only" in answer
    assert request(server, "GET", "/", None, {"Host": "localhost:1234"})[0] == 200


def test_host_names_without_their_port():
    from vis.explore_server import host_name
    assert [host_name(h) for h in ("[::1]:80", "127.0.0.1:8000", "LOCALHOST", "[::1]", None)] == [
        "::1", "127.0.0.1", "localhost", "::1", ""]
