#!/usr/bin/env python3
"""The management web UI in a real headless Chromium, driven by selenium as a person
would use it: log in (a user without a management tag is refused first), see the
nodes on Overview, declare a queue, publish a message and get it back on the queue's
page, add an `ha-mode: all` policy in the Admin > Policies form and watch the queue's
members grow to every node (the queue page and the Cluster tab refresh by themselves),
then delete the queue. A screenshot of each step goes to SCREENSHOT_DIR.

Scenario `no-majority` instead: the Cluster tab shows the quorum queue `ui.quorum` with
every member online and no alert, says "ui-browser: waiting for the kill" and waits for
SCREENSHOT_DIR/nodes-killed (the test creates it once it has killed two of the three
nodes), then, refreshing by itself, marks the queue as without a majority.

Run by tests/management_ui.rs against a three-node cluster it started:
  ui_browser.py BASE_URL SCREENSHOT_DIR NODE_COUNT [tour|no-majority]
Exits non-zero with a line saying which step failed (and a failed-*.png screenshot).
Needs Debian's chromium and chromium-driver, and selenium (scripts/install-test-deps.sh).
"""
import os
import shutil
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from selenium.webdriver.support import expected_conditions as EC

BASE, SHOTS, NODES = sys.argv[1], sys.argv[2], int(sys.argv[3])
SCENARIO = sys.argv[4] if len(sys.argv) > 4 else "tour"
QUEUE = "ui.orders"
QUORUM_QUEUE = "ui.quorum"
PAYLOAD = "hello from the browser"
os.makedirs(SHOTS, exist_ok=True)


def say(msg):
    print(f"ui-browser: {msg}", flush=True)


def find_binary(*names):
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if path:
            return path
    sys.exit(f"ui-browser: none of {names} is installed; run scripts/install-test-deps.sh")


options = webdriver.ChromeOptions()
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1400,1800", "--no-first-run", "--disable-extensions"]:
    options.add_argument(arg)
options.binary_location = find_binary("chromium", "chromium-browser")
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service(find_binary("chromedriver")), options=options)
driver.set_page_load_timeout(30)
step = 0


def shot(name):
    global step
    step += 1
    path = os.path.join(SHOTS, f"{step:02d}-{name}.png")
    driver.save_screenshot(path)
    say(f"screenshot {path}")


def wait(what, check, timeout=30.0):
    """Poll `check` until it returns something truthy; fail the run after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (StaleElementReferenceException, WebDriverException) as e:
            last = e
        time.sleep(0.2)
    driver.save_screenshot(os.path.join(SHOTS, "failed.png"))
    sys.exit(f"ui-browser: timed out after {timeout}s waiting for {what} (last: {last!r}); "
             f"see {SHOTS}/failed.png")


def text(css):
    els = driver.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else ""


def visible(css):
    els = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(els) and els[0].is_displayed()


def fill(css, value):
    el = driver.find_element(By.CSS_SELECTOR, css)
    el.clear()
    el.send_keys(value)


def open_section(section_id):
    """Expand a collapsed section, as a person clicks its title."""
    el = driver.find_element(By.ID, section_id)
    if "closed" in el.get_attribute("class"):
        el.find_element(By.CSS_SELECTOR, "h2").click()


def go(route):
    driver.get(f"{BASE}#/{route}")


def login(user, password):
    fill("#login-username", user)
    fill("#login-password", password)
    driver.find_element(By.ID, "login-submit").click()


def popup_says(words):
    return visible("#popup") and words in text("#popup-text")


def accept_confirm():
    WebDriverWait(driver, 5).until(EC.alert_is_present()).accept()


def tour():
    # 1. The login page; a user without a management tag is refused as RabbitMQ refuses it.
    driver.get(BASE)
    wait("the login form", lambda: visible("#login-form"))
    shot("login")
    login("plain", "plain")
    wait("the refusal of a user without a management tag",
         lambda: "Login failed" in text("#login-status") and "Not management user" in text("#login-status"))
    shot("refused")
    say("a user without a management tag is refused: " + text("#login-status").replace("\n", " / "))

    # 2. guest logs in; Overview lists every node, running.
    login("guest", "guest")
    wait("the signed-in layout", lambda: visible("#layout") and "guest" in text("#user-name"))
    wait(f"{NODES} running nodes on Overview", lambda: len([
        r for r in driver.find_elements(By.CSS_SELECTOR, "#nodes-list tr[data-node]")
        if "running" in r.text]) == NODES, timeout=60)
    wait("the global counts", lambda: text("#count-queues") != "")
    shot("overview")
    say("Overview lists the nodes: " + ", ".join(
        r.get_attribute("data-node") for r in driver.find_elements(By.CSS_SELECTOR, "#nodes-list tr[data-node]")))

    # 3. Declare a durable classic queue in the Queues tab's form.
    driver.find_element(By.CSS_SELECTOR, '#tabs a[data-tab="queues"]').click()
    wait("the add-queue form", lambda: visible("#add-queue-form"))
    wait("the vhost choice", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#add-queue-form select[name=vhost] option")) > 0)
    Select(driver.find_element(By.CSS_SELECTOR, "#add-queue-form select[name=type]")).select_by_value("classic")
    Select(driver.find_element(By.CSS_SELECTOR, "#add-queue-form select[name=durable]")).select_by_value("true")
    fill("#add-queue-name", QUEUE)
    driver.find_element(By.ID, "add-queue-submit").click()
    wait(f"{QUEUE} in the queue list", lambda: driver.find_elements(By.CSS_SELECTOR, f'#queues-list tr[data-queue="{QUEUE}"]'))
    shot("queue-declared")
    say(f"declared {QUEUE} in the UI")

    # 4. Its page: publish a message, then get it back.
    driver.find_element(By.LINK_TEXT, QUEUE).click()
    wait("the queue page", lambda: text("#queue-name") == QUEUE and text("#queue-details") != "")
    open_section("publish")
    Select(driver.find_element(By.CSS_SELECTOR, "#publish-form select[name=delivery_mode]")).select_by_value("2")
    fill("#publish-payload", PAYLOAD)
    driver.find_element(By.CSS_SELECTOR, "#publish-form input[type=submit]").click()
    wait("'Message published.'", lambda: popup_says("Message published."))
    wait("one message counted on the queue page", lambda: text("#queue-messages") == "1")
    open_section("get")
    Select(driver.find_element(By.CSS_SELECTOR, "#get-form select[name=ackmode]")).select_by_value("ack_requeue_false")
    driver.find_element(By.CSS_SELECTOR, "#get-form input[type=submit]").click()
    got = wait("the message got back", lambda: text("#get-results pre.payload"))
    if got != PAYLOAD:
        sys.exit(f"ui-browser: Get messages showed {got!r}, not {PAYLOAD!r}")
    driver.execute_script("document.getElementById('get').scrollIntoView()")
    shot("message-got")
    say(f"published and got back {got!r}")
    wait("the queue empty again", lambda: text("#queue-messages") == "0")

    # 5. An ha-mode: all policy through Admin > Policies, typed into the definition rows.
    driver.find_element(By.CSS_SELECTOR, '#tabs a[data-tab="admin"]').click()
    wait("the admin menu", lambda: visible("#admin-menu"))
    driver.find_element(By.LINK_TEXT, "Policies").click()
    wait("the policy form", lambda: visible("#policy-form")
         and driver.find_elements(By.CSS_SELECTOR, "#policy-form select[name=vhost] option"))
    fill("#policy-form input[name=name]", "ui-ha")
    fill("#policy-form input[name=pattern]", r"^ui\.")
    Select(driver.find_element(By.CSS_SELECTOR, "#policy-form select[name=apply-to]")).select_by_value("queues")
    fill("#policy-form input[name=definition_0_key]", "ha-mode")
    fill("#policy-form input[name=definition_0_value]", "all")
    wait("a second definition row", lambda: driver.find_elements(By.CSS_SELECTOR, "#policy-form input[name=definition_1_key]"))
    driver.find_element(By.ID, "policy-submit").click()
    wait("ui-ha in the policy list", lambda: "ha-mode: all" in text('#policies-list tr[data-policy="ui-ha"]'))
    shot("policy-added")
    say("added policy ui-ha (ha-mode: all) in the Admin form")

    # 6. The queue page refreshes by itself until the queue has a member on every node.
    go(f"queues/%2F/{QUEUE}")
    wait(f"{NODES} Raft members on the queue page", lambda: len(
        driver.find_elements(By.CSS_SELECTOR, "#members-list tr[data-member]")) == NODES
        and len(driver.find_elements(By.CSS_SELECTOR, "#queue-member-tags .tag")) == NODES
        and "ui-ha" in text("#queue-details"), timeout=90)
    wait("one leader among the members", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#queue-member-tags .tag.leader")) == 1)
    driver.execute_script("document.getElementById('queue-members').scrollIntoView()")
    shot("members-grown")
    say("members: " + ", ".join(
        r.get_attribute("data-member") for r in driver.find_elements(By.CSS_SELECTOR, "#members-list tr[data-member]")))

    # 7. The Cluster tab shows the group: every member, none behind for long, a majority.
    driver.find_element(By.CSS_SELECTOR, '#tabs a[data-tab="cluster"]').click()
    row = f'#replicated-list tr[data-queue="{QUEUE}"]'
    wait(f"{QUEUE} with {NODES} members on the Cluster tab", lambda: len(
        driver.find_elements(By.CSS_SELECTOR, f"{row} .member")) == NODES and "alert" not in
        (driver.find_element(By.CSS_SELECTOR, row).get_attribute("class") or ""), timeout=30)
    shot("cluster-tab")
    say("Cluster tab: " + text(row).replace("\n", " / "))

    # 8. Delete the queue from its page.
    go(f"queues/%2F/{QUEUE}")
    wait("the queue page again", lambda: text("#queue-name") == QUEUE)
    open_section("delete")
    driver.find_element(By.ID, "delete-queue").click()
    accept_confirm()
    wait("the queue list without the queue", lambda: driver.current_url.endswith("#/queues")
         and visible("#queues-table") and text("#queues-table") != ""
         and not driver.find_elements(By.CSS_SELECTOR, f'#queues-list tr[data-queue="{QUEUE}"]'))
    shot("queue-deleted")
    say(f"deleted {QUEUE}")


def no_majority():
    """The Cluster tab on the surviving node marks a queue whose majority died."""
    login("guest", "guest")
    wait("the signed-in layout", lambda: visible("#layout") and "guest" in text("#user-name"))
    driver.find_element(By.CSS_SELECTOR, '#tabs a[data-tab="cluster"]').click()
    row = f'#replicated-list tr[data-queue="{QUORUM_QUEUE}"]'

    def row_class():
        return driver.find_element(By.CSS_SELECTOR, row).get_attribute("class") or ""

    wait(f"{QUORUM_QUEUE} with {NODES} members online and no alert on the Cluster tab", lambda: len(
        driver.find_elements(By.CSS_SELECTOR, f"{row} .member")) == NODES
        and f"{NODES} of {NODES}" in text(row) and "alert" not in row_class()
        and "every one has a live majority" in text("#cluster-summary-text"), timeout=60)
    shot("cluster-healthy")
    say("Cluster tab before: " + text(row).replace("\n", " / "))

    # The test kills two nodes' processes, then says so with a file.
    killed = os.path.join(SHOTS, "nodes-killed")
    say("waiting for the kill")
    wait("the test to kill two nodes", lambda: os.path.exists(killed), timeout=60)

    # The page refreshes by itself (every 5 s) until the queue is marked.
    wait(f"{QUORUM_QUEUE} marked as without a majority", lambda: "alert" in row_class()
         and "no majority" in text(f"{row} b.status-red") and f"1 of {NODES}" in text(row)
         and "without a majority" in text("#cluster-summary-text b.status-red"), timeout=90)
    # The highlight is visible, not only a class: the row is tinted.
    tint = driver.find_element(By.CSS_SELECTOR, f"{row} td").value_of_css_property("background-color")
    if tint in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)", "rgba(255, 255, 255, 1)"):
        sys.exit(f"ui-browser: the row of {QUORUM_QUEUE} is marked but not tinted ({tint})")
    down = [el.text for el in driver.find_elements(By.CSS_SELECTOR, f"{row} .tag.down")]
    if len(down) != NODES - 1:
        sys.exit(f"ui-browser: expected {NODES - 1} members shown down, saw {down}")
    shot("no-majority")
    say(f"Cluster tab after (row background {tint}): " + text(row).replace("\n", " / "))
    say("summary: " + text("#cluster-summary-text"))


SCENARIOS = {"tour": tour, "no-majority": no_majority}

try:
    if SCENARIO not in SCENARIOS:
        sys.exit(f"ui-browser: unknown scenario {SCENARIO!r} (one of {', '.join(SCENARIOS)})")
    if SCENARIO != "tour":
        driver.get(BASE)
        wait("the login form", lambda: visible("#login-form"))
    SCENARIOS[SCENARIO]()
    # No script errors on the way (refused requests are logged by the browser too: those
    # were asked for).
    errors = [e for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
    if errors:
        sys.exit(f"ui-browser: the page logged errors: {errors}")
    say("ok")
finally:
    driver.quit()
