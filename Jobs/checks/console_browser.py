"""Drives the dispatcher console in headless Chromium (Selenium) as a supervisor and a viewer would,
asserting on what each page shows. Called by Jobs/checks/console-browser.sh, which sets up the data.
Prints one JSON object (steps passed, the decision shown and its units); exits 1 at the first
failed step, naming it."""
import argparse
import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import Select, WebDriverWait

p = argparse.ArgumentParser()
for name in ["base", "supervisor", "supervisor-password-file", "viewer", "viewer-password-file", "stale", "no-data",
             "cli-dins", "stop-db", "start-db", "import-late", "screens"]:
    p.add_argument("--" + name, required=True)
p.add_argument("--centres", type=int, required=True)
args = p.parse_args()

steps = []
out = {}


def fail(step, why):
    shot(driver, "failed-" + step)
    print(json.dumps({"failed": step, "why": why, "steps_passed": steps}), file=sys.stderr)
    sys.exit(1)


def passed(step):
    steps.append(step)
    shot(driver, "%02d-%s" % (len(steps), step))


def shot(d, name):
    try:
        d.save_screenshot(os.path.join(args.screens, name + ".png"))
    except Exception:
        pass


def wait_for(what, condition, seconds=20):
    try:
        # A page that navigates or redraws between finding an element and reading it is read again.
        return WebDriverWait(driver, seconds, poll_frequency=0.2,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(lambda d: condition(d))
    except Exception as e:
        fail(what, "not seen within %d s (%s)" % (seconds, type(e).__name__))


def text(element_id):
    els = driver.find_elements(By.ID, element_id)
    return els[0].text if els else ""


def axe_violations():
    """WCAG 2 A and AA violations axe-core finds on the current page (axe-core ships inside the
    axe-selenium-python package; injected by WebDriver, which the page's CSP does not govern)."""
    import axe_selenium_python
    source = open(os.path.join(os.path.dirname(axe_selenium_python.__file__), "node_modules/axe-core/axe.min.js")).read()
    driver.execute_script(source)
    return driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}, function (err, r) {"
        "  done(err ? [{id: 'axe-error', detail: String(err)}] : r.violations.map(function (v) {"
        "    return {id: v.id, impact: v.impact, nodes: v.nodes.length, first: v.nodes[0] && v.nodes[0].target}; })); });")


def no_sideways_scroll(what):
    width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1] + 1:
        fail(what, "the page scrolls sideways: %d px of content in a %d px window" % (width[0], width[1]))


def log_in(name, password_file):
    driver.get(args.base + "/console")
    wait_for("login_page", lambda d: d.current_url.endswith("/console/login") and d.find_elements(By.ID, "operator"))
    driver.find_element(By.ID, "operator").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(open(password_file).read().strip())
    driver.find_element(By.ID, "login").click()
    wait_for("logged_in_" + name, lambda d: d.current_url.endswith("/console") and text("operator") == name)


options = webdriver.ChromeOptions()
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800", "--disable-gpu"]:
    options.add_argument(a)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)
driver.set_script_timeout(60)
try:
    # 1. A wrong password is refused with the fixed message; the right one logs in.
    driver.get(args.base + "/console/login")
    driver.find_element(By.ID, "operator").send_keys(args.supervisor)
    driver.find_element(By.ID, "password").send_keys("not-the-password")
    driver.find_element(By.ID, "login").click()
    wait_for("refused_login", lambda d: "not accepted" in text("message"))
    cookie = [c for c in driver.get_cookies() if c["name"] == "bm_console"]
    if cookie:
        fail("refused_login", "a refused log-in set a session cookie")
    violations = axe_violations()
    if violations:
        fail("refused_login", "WCAG violations on the log-in page: %r" % violations)
    passed("refused_login")
    log_in(args.supervisor, args.supervisor_password_file)
    cookie = [c for c in driver.get_cookies() if c["name"] == "bm_console"]
    if not cookie or not cookie[0]["httpOnly"] or not cookie[0]["secure"] or cookie[0].get("sameSite") != "Strict":
        fail("login", "session cookie not HttpOnly, Secure and SameSite=Strict: %r" % cookie)
    passed("login")

    # 2. The map and the table show every centre.
    wait_for("map", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map circle.centre")) == args.centres)
    rows = driver.find_elements(By.CSS_SELECTOR, "#centres tbody tr")
    if len(rows) != args.centres:
        fail("map", "table has %d centres, expected %d" % (len(rows), args.centres))
    if not driver.find_elements(By.CSS_SELECTOR, "#map path.land"):
        fail("map", "no country outlines drawn")
    passed("map_every_centre")

    # 3. The stale and the no-data centres stand out and say so.
    stale = driver.find_element(By.CSS_SELECTOR, '#centres tbody tr[data-id="%s"]' % args.stale)
    if stale.get_attribute("data-state") != "stale" or "last known stock" not in stale.text or "min old" not in stale.text:
        fail("stale", "stale centre row reads %r" % stale.text)
    nodata = driver.find_element(By.CSS_SELECTOR, '#centres tbody tr[data-id="%s"]' % args.no_data)
    if nodata.get_attribute("data-state") != "no_data" or "no data" not in nodata.text:
        fail("no_data", "no-data centre row reads %r" % nodata.text)
    circle = driver.find_element(By.CSS_SELECTOR, '#map circle[data-id="%s"]' % args.stale)
    if "stale" not in circle.get_attribute("class"):
        fail("stale", "stale centre not marked on the map")
    circle = driver.find_element(By.CSS_SELECTOR, '#map circle[data-id="%s"]' % args.no_data)
    if "nodata" not in circle.get_attribute("class"):
        fail("no_data", "no-data centre not marked on the map")
    current = [r for r in driver.find_elements(By.CSS_SELECTOR, '#centres tbody tr[data-state="current"]')]
    if len(current) != args.centres - 2:
        fail("stale", "%d current centres, expected %d" % (len(current), args.centres - 2))
    passed("stale_and_no_data_flagged")
    violations = axe_violations()
    if violations:
        fail("accessibility", "WCAG violations on the console: %r" % violations)
    passed("wcag_aa_axe")

    # 4. Match 2 O RhD-negative red-cell units for a woman of 30.
    driver.find_element(By.ID, "tab-match").click()
    Select(driver.find_element(By.ID, "m-hospital")).select_by_value("H0001")
    Select(driver.find_element(By.ID, "m-component")).select_by_value("RBC")
    Select(driver.find_element(By.ID, "m-abo")).select_by_value("O")
    Select(driver.find_element(By.ID, "m-rhd")).select_by_value("NEG")
    Select(driver.find_element(By.ID, "m-sex")).select_by_value("female")
    age = driver.find_element(By.ID, "m-age"); age.clear(); age.send_keys("30")
    qty = driver.find_element(By.ID, "m-quantity"); qty.clear(); qty.send_keys("2")
    Select(driver.find_element(By.ID, "m-urgency")).select_by_value("urgent")
    driver.find_element(By.ID, "match").click()
    wait_for("match", lambda d: d.find_elements(By.CSS_SELECTOR, "#chosen tbody tr") or d.find_elements(By.ID, "match-error"))
    outcome = driver.find_element(By.ID, "outcome").get_attribute("data-outcome")
    units = driver.find_elements(By.CSS_SELECTOR, "#chosen tbody tr")
    dins = sorted(u.get_attribute("data-din") for u in units)
    groups = {u.find_elements(By.TAG_NAME, "td")[3].text for u in units}
    if outcome != "fulfilled" or len(units) != 2 or groups != {"O-"}:
        fail("match", "outcome %s, %d units, groups %r" % (outcome, len(units), groups))
    if ",".join(dins) != args.cli_dins:
        fail("match", "page shows %s, the CLI chose %s for the same question" % (dins, args.cli_dins))
    if driver.find_elements(By.ID, "flags"):
        fail("match", "unexpected flags %r" % driver.find_element(By.ID, "flags").text)
    why = units[0].find_elements(By.TAG_NAME, "td")[7].text
    if "RhD-negative required" not in why:
        fail("match", "the reason given is %r" % why)
    no_sideways_scroll("match")
    driver.set_window_size(768, 1024)
    time.sleep(0.5)
    no_sideways_scroll("tablet")
    shot(driver, "tablet-768x1024")
    driver.set_window_size(1280, 800)
    out["dins"] = dins
    out["decision_id_first"] = driver.find_element(By.ID, "decision-id").get_attribute("data-decision")
    out["decision_outcome"] = outcome
    passed("match_two_o_negative")

    # 4b. Every requirement the engine knows is offered; irradiated platelets needed within 6 h.
    boxes = driver.find_elements(By.CSS_SELECTOR, '#m-requirements input[name="requirement"]')
    if len(boxes) < 20:
        fail("requirements", "%d requirement boxes offered" % len(boxes))
    Select(driver.find_element(By.ID, "m-component")).select_by_value("PLT")
    qty.clear(); qty.send_keys("2")
    driver.find_element(By.CSS_SELECTOR, '#m-requirements input[value="IRRADIATED"]').click()
    driver.execute_script("document.getElementById('m-needed-by').value = arguments[0]",
                          time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() + 6 * 3600)))
    driver.find_element(By.ID, "match").click()
    wait_for("match_platelets", lambda d: d.find_elements(By.ID, "match-error")
             or (d.find_element(By.ID, "decision-id").get_attribute("data-decision") != out["decision_id_first"]
                 and d.find_elements(By.CSS_SELECTOR, "#chosen tbody tr")))
    if driver.find_elements(By.ID, "match-error"):
        fail("match_platelets", driver.find_element(By.ID, "match-error").text)
    plt_units = driver.find_elements(By.CSS_SELECTOR, "#chosen tbody tr")
    if not all("irradiated" in u.find_elements(By.TAG_NAME, "td")[2].text for u in plt_units):
        fail("match_platelets", "a chosen platelet unit is not irradiated: %r" % [u.text for u in plt_units])
    passed("match_irradiated_platelets")
    # Back to the first answer's hold: match the red cells again (same form, new key) and hold those.
    Select(driver.find_element(By.ID, "m-component")).select_by_value("RBC")
    driver.find_element(By.CSS_SELECTOR, '#m-requirements input[value="IRRADIATED"]').click()
    driver.execute_script("document.getElementById('m-needed-by').value = ''")
    driver.find_element(By.ID, "match").click()
    wait_for("match_again", lambda d: d.find_element(By.ID, "outcome").get_attribute("data-outcome") == "fulfilled"
             and sorted(u.get_attribute("data-din") for u in d.find_elements(By.CSS_SELECTOR, "#chosen tbody tr")) == dins)
    out["decision_id"] = driver.find_element(By.ID, "decision-id").get_attribute("data-decision")

    # 5. Reserve, then issue as the supervisor.
    driver.find_element(By.ID, "reserve").click()
    wait_for("reserve", lambda d: d.find_elements(By.CSS_SELECTOR, "#hold li") or d.find_elements(By.ID, "hold-result"))
    held = sorted(li.get_attribute("data-din") for li in driver.find_elements(By.CSS_SELECTOR, "#hold li"))
    if held != dins:
        fail("reserve", "held %r, expected %r (%s)" % (held, dins, text("hold-result")))
    out["reservation_id"] = driver.find_element(By.ID, "hold").get_attribute("data-reservation")
    passed("reserve")
    driver.find_element(By.ID, "issue").click()
    wait_for("issue", lambda d: text("issue-result") != "")
    if not text("issue-result").startswith("Issued 2 unit(s)"):
        fail("issue", text("issue-result"))
    passed("issue_as_supervisor")

    # 6. Orders and batch, stock at risk, and the issued unit's history.
    driver.find_element(By.ID, "tab-orders").click()
    wait_for("orders", lambda d: "ORD-C4" in d.find_element(By.ID, "pending").text)
    wait_for("dispatch", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dispatch tbody tr th")) >= 1
             and "ORD-C3" in d.find_element(By.ID, "short").text)
    short = driver.find_element(By.ID, "short").text
    if "0 of 2" not in short:
        fail("orders", "the unfilled order reads %r" % short)
    passed("orders_and_batch")
    driver.find_element(By.ID, "tab-risk").click()
    wait_for("at_risk", lambda d: d.find_elements(By.CSS_SELECTOR, "#risk tbody tr") and d.find_elements(By.CSS_SELECTOR, "#transfers tbody tr"))
    passed("stock_at_risk")
    driver.find_element(By.ID, "tab-trace").click()
    driver.find_element(By.ID, "t-din").send_keys(dins[0])
    driver.find_element(By.ID, "trace").click()
    wait_for("trace", lambda d: "issued from" in d.find_element(By.ID, "timeline").text)
    timeline = driver.find_element(By.ID, "timeline").text
    if "held for H0001" not in timeline or "chosen by decision" not in timeline or args.supervisor not in timeline:
        fail("trace", "the history reads %r" % timeline[:600])
    where = driver.find_element(By.ID, "where-now").text
    if "issued" not in where or "Wollongong" not in where:
        fail("trace", "where the unit is now reads %r" % where[:400])
    passed("trace_issued_unit")

    # 6. A viewer sees everything and is offered no match; an issue sent anyway is refused.
    driver.find_element(By.ID, "logout").click()
    wait_for("logout", lambda d: d.current_url.endswith("/console/login?e=logged_out"))
    log_in(args.viewer, args.viewer_password_file)
    wait_for("viewer_map", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map circle.centre")) == args.centres)
    if driver.find_element(By.ID, "tab-match").is_displayed():
        fail("viewer", "the match tab is offered to a viewer")
    status = driver.execute_script(
        "return fetch('/console/api/reservations/%s/issue', {method:'POST', headers:{'Content-Type':'application/json',"
        "'X-CSRF-Token': state.csrf, 'Idempotency-Key': 'viewer-issue-0001'}, body: '{}'}).then(r => r.status)" % out["reservation_id"])
    if status != 403:
        fail("viewer", "a viewer's issue was answered %s" % status)
    passed("viewer_cannot_issue")

    # 7. The centre without data sends its first snapshot: the open page shows it within seconds.
    started_import = time.time()
    subprocess.run([args.import_late], check=True, timeout=60)
    wait_for("live_import", lambda d: d.find_element(By.CSS_SELECTOR, '#centres tbody tr[data-id="%s"]' % args.no_data)
             .get_attribute("data-state") == "current", seconds=30)
    out["import_seen_after_s"] = round(time.time() - started_import, 1)
    passed("live_import_shown")

    # 8. The database stops: the banner, and no number shown as certain. Then it comes back.
    subprocess.run([args.stop_db], check=True, timeout=60)
    wait_for("banner", lambda d: d.find_element(By.ID, "banner").is_displayed()
             and "unable to verify" in d.find_element(By.ID, "banner").text.lower(), seconds=40)
    wait_for("banner_numbers", lambda d: all(td.text == "—" for td in d.find_elements(By.CSS_SELECTOR, "#centres tbody td.num")))
    passed("database_down_banner")
    subprocess.run([args.start_db], check=True, timeout=60)
    wait_for("recovered", lambda d: not d.find_element(By.ID, "banner").is_displayed()
             and any(td.text.isdigit() for td in d.find_elements(By.CSS_SELECTOR, "#centres tbody td.num")), seconds=60)
    passed("database_back_recovers")

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "Content Security Policy" in e["message"]]
    if severe:
        fail("csp", "Content-Security-Policy violations: %r" % severe[:3])
    passed("no_csp_violations")
finally:
    try:
        driver.quit()
    except Exception:
        pass

print(json.dumps({"steps": len(steps), "names": steps, "dins": out.get("dins", []), "decision_id": out.get("decision_id", ""),
                  "reservation_id": out.get("reservation_id"),
                  "import_seen_after_s": out.get("import_seen_after_s")}))
