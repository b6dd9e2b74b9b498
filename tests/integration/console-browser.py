#!/usr/bin/python3
# Drives the operator console in headless Chromium (Debian's chromium and
# chromium-driver, python3-selenium) against the daemon console-browser.sh
# started. Arguments: BASE TOKEN STATS_JSON CONF DAEMON_PID SHOTS_DIR.
# Exits 0 when every check holds, 1 with a message otherwise.
import json
import os
import signal
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

BASE, TOKEN, STATS, CONF, PID, SHOTS = sys.argv[1:7]
SIZES = ((1280, 800), (390, 844))


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def wait_for(what, fn, secs=20):
    end = time.time() + secs
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def api(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method,
                                 data=None if body is None else body.encode())
    req.add_header("Authorization", "Bearer " + TOKEN)
    if body is not None or method == "POST":
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


opts = Options()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--no-first-run",
          "--disable-background-networking", "--disable-sync",
          "--disable-component-update"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL",
                                          "performance": "ALL"})
try:
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                           options=opts)
except Exception as e:  # chromium cannot run here
    print("SKIP: chromium does not start: %s" % e, file=sys.stderr)
    sys.exit(77)

seen_urls = []
console_errors = []


def drain_logs():
    for e in drv.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m.get("method") == "Network.requestWillBeSent":
            seen_urls.append(m["params"]["request"]["url"])
    for e in drv.get_log("browser"):
        if e["level"] == "SEVERE":
            console_errors.append(e["message"])


def shots(name):
    for w, h in SIZES:
        drv.set_window_size(w, h)
        time.sleep(0.3)
        drv.save_screenshot(os.path.join(SHOTS, "%s-%dx%d.png" % (name, w, h)))
    drv.set_window_size(*SIZES[0])


def shown(id_):
    return drv.find_element(By.ID, id_).is_displayed()


try:
    drv.set_window_size(*SIZES[0])
    drv.get(BASE + "/ui/")
    wait_for("the login form", lambda: shown("login"))
    time.sleep(0.5)
    drain_logs()
    check(not shown("nav") and not shown("view-overview") and
          not shown("view-order") and not shown("view-events"),
          "without the token only the login shows")
    check(not any("/v1/" in u for u in seen_urls),
          "without the token no order data is asked for")
    shots("login")

    # Log in with the keyboard: the token field has the focus.
    active = drv.switch_to.active_element
    check(active.get_attribute("id") == "token", "the token field has the focus")
    active.send_keys(TOKEN + Keys.ENTER)
    wait_for("the overview", lambda: shown("view-overview"))

    stats = json.load(open(STATS))

    def counts_shown():
        got = {}
        for td in drv.find_elements(By.CSS_SELECTOR, "#states td[data-state]"):
            got[td.get_attribute("data-state")] = int(td.text)
        return got if got == stats["orders"] else None
    wait_for("the counts of reconcilectl stats", counts_shown)
    check(True, "orders by state match reconcilectl stats --json")

    wait_for("needs a human", lambda: shown("human"))
    lines = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#held .config-line")]
    check(lines == ["[status]\nPAYMENT_PENDING_REVIEW = grant"],
          "needs a human names the configuration line (got %r)" % lines)
    human_y = drv.find_element(By.ID, "human").location["y"]
    states_y = drv.find_element(By.ID, "states").location["y"]
    check(human_y < states_y, "needs a human comes first")
    wait_for("the day chart", lambda: drv.find_elements(
        By.CSS_SELECTOR, "#chart-day rect"))
    shots("overview")

    # A new event appears in the feed without a reload.
    drv.get(BASE + "/ui/#events")
    wait_for("the feed", lambda: shown("view-events") and
             drv.find_elements(By.CSS_SELECTOR, "#feed li"))
    before = len(drv.find_elements(By.CSS_SELECTOR, "#feed li"))
    api("POST", "/v1/orders", '{"orderId":"us-after","userKey":"3003"}')
    wait_for("the grant of us-after in the feed", lambda: any(
        "grant" in li.text and "us-after" in li.text
        for li in drv.find_elements(By.CSS_SELECTOR, "#feed li")))
    check(len(drv.find_elements(By.CSS_SELECTOR, "#feed li")) > before,
          "a new event appears in the feed without a reload")
    shots("events")

    # The re-check button polls the order again at once.
    drv.get(BASE + "/ui/#order")
    wait_for("the order page", lambda: shown("view-order"))
    q = drv.find_element(By.ID, "q")
    q.send_keys("us-paid" + Keys.ENTER)
    wait_for("us-paid's fields", lambda: drv.find_elements(By.ID, "recheck"))
    o0 = api("GET", "/v1/orders/us-paid")
    check(o0["nextPollAt"] is not None, "us-paid waits for its refund check")
    drv.find_element(By.ID, "recheck").click()
    o1 = wait_for("us-paid polled again", lambda: (lambda o: o if
                  o["polls"] > o0["polls"] else None)(
                  api("GET", "/v1/orders/us-paid")))
    check(o1["polls"] == o0["polls"] + 1 and o1["updatedAt"] != o0["updatedAt"],
          "the re-check button moved the order's next poll (polled at once)")
    # The page draws the order again after the re-check: wait for it.
    trs = wait_for("the order's fields and transitions", lambda: (
        lambda t: t if len(t) >= 2 else None)(
        drv.find_elements(By.CSS_SELECTOR, "#order table")), secs=10)
    check(len(trs) >= 2, "the order shows its fields and transitions")
    shots("order")

    # Map the status, SIGHUP: the group leaves "needs a human".
    with open(CONF, "a") as f:
        f.write("[status]\nPAYMENT_PENDING_REVIEW = grant\n")
    os.kill(int(PID), signal.SIGHUP)
    drv.get(BASE + "/ui/#overview")
    wait_for("needs a human to empty", lambda: shown("view-overview") and
             api("GET", "/v1/attention")["held"] == [] and
             not drv.find_elements(By.CSS_SELECTOR, "#held .config-line"),
             secs=30)
    check(not shown("human"),
          "after the mapping and SIGHUP the held group is gone")

    drain_logs()
    check(console_errors == [], "no console errors (got %r)" % console_errors)
    foreign = [u for u in seen_urls if not u.startswith(BASE + "/")]
    check(foreign == [], "no request leaves %s (got %r)" % (BASE, foreign))

    # An inline script is refused by the CSP.
    drv.execute_script("""
        var s = document.createElement('script');
        s.textContent = 'window.inlineRan = 1;';
        document.body.appendChild(s);""")
    time.sleep(0.3)
    check(drv.execute_script("return window.inlineRan === undefined;"),
          "an inline script does not run")
    drain_logs()
    check(any("Content Security Policy" in m for m in console_errors),
          "the CSP refused it")
finally:
    drv.quit()
print("all browser checks passed")
