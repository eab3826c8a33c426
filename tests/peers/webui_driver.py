"""Drives Debian's headless Chromium over obsd's web UI and prints what it saw as JSON (the
Rust test tests/webui.rs compares that with the APIs). Writes one screenshot per page.

    webui_driver.py --metrics URL --traces URL --balancer URL --federation URL --alertmanager URL
                    --user U --password P --shots DIR
                    --seed-expr EXPR --many-expr EXPR --service NAME --trace-id ID --bad-expr EXPR
"""
import argparse
import base64
import json
import os
import tempfile
import time
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

p = argparse.ArgumentParser()
for a in ["metrics", "traces", "balancer", "federation", "alertmanager", "user", "password", "shots", "seed-expr", "many-expr", "service", "trace-id", "bad-expr", "exemplar-expr"]:
    p.add_argument("--" + a, required=True)
args = p.parse_args()
os.makedirs(args.shots, exist_ok=True)

profile = tempfile.mkdtemp(prefix="obsd-webui-chrome-")
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for f in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"]:
    opts.add_argument(f)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
driver.set_script_timeout(60)
wait = WebDriverWait(driver, 30)
out = {"first_paint_ms": {}}


def shot(name):
    driver.save_screenshot(os.path.join(args.shots, f"{name}.png"))


def nav_status():
    return driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : null;")


def fresh(url):
    """Loads url as a new document and returns its first contentful paint (ms)."""
    driver.get("about:blank")
    driver.get(url)
    wait.until(lambda d: d.execute_script("return performance.getEntriesByType('paint').length > 0"))
    return driver.execute_script(
        "const e = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');"
        "return e ? e.startTime : null;")


def css(sel):
    return driver.find_elements(By.CSS_SELECTOR, sel)


def completion(hint):
    """The candidates of the open completion list once it offers `hint` entries (read in one
    script, as the list is re-rendered while typing)."""
    return wait.until(lambda d: d.execute_script("""
const box = document.querySelector('.completion');
if (!box || box.hidden) return null;
const items = [...box.children].filter(e => e.querySelector('small')?.textContent === arguments[0]);
return items.length ? items.map(e => e.firstChild.textContent) : null;
""", hint))


def open_page(url):
    """A new document (not just a hash change), as when a shared link is opened."""
    driver.get("about:blank")
    driver.get(url)


def until(sel, n=1):
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, sel)) >= n)
    return css(sel)


# Colourful pixels of a chart canvas: series strokes and fills (the grid and axes are grey).
PAINTED = """
const c = arguments[0].querySelector('canvas');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) {
  if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
}
return n;
"""

# --- without credentials: the browser gets the listener's 401 -------------------------------
driver.get(args.metrics + "/")
out["unauthenticated_status"] = nav_status()
driver.get(args.traces + "/")
out["unauthenticated_status_traces"] = nav_status()

# Every later request carries the credentials, as after the browser's basic-auth prompt.
token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
driver.execute_cdp_cmd("Network.enable", {})
driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
driver.get_log("browser")  # drop the expected 401 console lines

# --- query page: a seed panel's graph ----------------------------------------------------------
q = urllib.parse.urlencode({"expr": args.seed_expr, "tab": "graph", "range": "5m"})
out["first_paint_ms"]["query"] = fresh(f"{args.metrics}/#/query?{q}")
chart = until("#chart[data-series]")[0]
until("#chart .u-legend .u-series", 2)
time.sleep(0.3)
out["query"] = {
    "series": int(chart.get_attribute("data-series")),
    "legend": [e.text for e in css("#chart .u-legend .u-series:not(:first-child) .u-label")],
    "painted_pixels": driver.execute_script(PAINTED, chart),
    "url": driver.current_url,
}
# Hover shows values in the legend.
over = css("#chart .u-over")[0]
driver.execute_script("""
const o = arguments[0], r = o.getBoundingClientRect();
o.dispatchEvent(new MouseEvent('mouseenter', {clientX: r.right - 1, clientY: r.top + 10, bubbles: true}));
o.dispatchEvent(new MouseEvent('mousemove', {clientX: r.right - 1, clientY: r.top + 10, bubbles: true}));
""", over)
time.sleep(0.2)
out["query"]["hover_values"] = [e.text for e in css("#chart .u-legend .u-series:not(:first-child) .u-value")]
shot("query-graph")
css("#stacked")[0].click()
wait.until(lambda d: "stacked=1" in d.current_url)
chart = until("#chart[data-series]")[0]
out["query"]["stacked_painted_pixels"] = driver.execute_script(PAINTED, chart)
out["query"]["stacked_url"] = driver.current_url
css("#stacked")[0].click()
until("#chart[data-series]")
css(".tabs button[data-tab=table]")[0].click()
until("#result-table tr", 2)
out["query"]["table_rows"] = len(css("#result-table tr")) - 1
shot("query-table")

# Completion of metric names and of label values.
driver.get(f"{args.metrics}/#/query")
box = until("#expr")[0]
box.send_keys("python_app_req")
out["completion_metric"] = completion("metric")
shot("query-completion")
box.clear()
box.send_keys('up{job="')
out["completion_value"] = completion("job")

box.clear()
box.send_keys("sum by (")
out["completion_label"] = completion("label")

# An invalid query shows the API's error with its position.
q = urllib.parse.urlencode({"expr": args.bad_expr, "tab": "graph"})
open_page(f"{args.metrics}/#/query?{q}")
err = until("#query-error")[0]
out["invalid"] = {"text": err.text, "line": err.get_attribute("data-line"), "column": err.get_attribute("data-column")}
shot("query-error")
driver.get_log("browser")  # the 400 of the invalid query is expected

# --- 1,000 series: draw time, hover frame times, drag zoom ----------------------------------
q = urllib.parse.urlencode({"expr": args.many_expr, "tab": "graph", "range": "10m", "step": "2s"})
open_page(f"{args.metrics}/#/query?{q}")
chart = until("#chart[data-series]")[0]
many = {"series": int(chart.get_attribute("data-series")), "draw_ms": int(chart.get_attribute("data-draw-ms"))}
many["hover_frame_ms"] = driver.execute_async_script("""
const done = arguments[arguments.length - 1];
const o = document.querySelector('#chart .u-over'), r = o.getBoundingClientRect();
const times = [];
o.dispatchEvent(new MouseEvent('mouseenter', {clientX: r.left + 5, clientY: r.top + 5, bubbles: true}));
(async () => {
  for (let i = 0; i < 40; i++) {
    const t = performance.now();
    o.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 5 + i * (r.width - 10) / 40, clientY: r.top + r.height / 2, bubbles: true}));
    await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0)));
    times.push(performance.now() - t);
  }
  done(times);
})();
""")
many["tooltip"] = css("#chart .u-tip")[0].text if css("#chart .u-tip") else ""
# Drag to zoom with real pointer input; the time is from the button's release to the redraw.
before = [chart.get_attribute("data-xmin"), chart.get_attribute("data-xmax")]
driver.execute_script(
    "document.addEventListener('mouseup', () => (document.body.dataset.upAt = performance.now()), {once: true, capture: true})")
w = css("#chart .u-over")[0].size["width"]
ActionChains(driver).move_to_element_with_offset(css("#chart .u-over")[0], int(-w * 0.2), 0).click_and_hold() \
    .move_by_offset(int(w * 0.15), 0).move_by_offset(int(w * 0.15), 0).release().perform()
time.sleep(0.5)
many["zoom"] = {"before": before, "after": [chart.get_attribute("data-xmin"), chart.get_attribute("data-xmax")],
                "ms": driver.execute_script(
                    "return parseFloat(arguments[0].dataset.drawnAt) - parseFloat(document.body.dataset.upAt)", chart)}
many["painted_pixels"] = driver.execute_script(PAINTED, chart)
out["many"] = many
shot("query-1000-series")

# --- exemplars: a latency exemplar links to its trace in the collector's UI ---------------------
driver.execute_script("localStorage.setItem('obsd.traceUi', arguments[0])", args.traces)
q = urllib.parse.urlencode({"expr": args.exemplar_expr, "tab": "graph", "range": "5m"})
open_page(f"{args.metrics}/#/query?{q}")
link = until("#exemplars a.trace-link")[0]
out["exemplars"] = {"count": len(css("#exemplars a.trace-link")), "href": link.get_attribute("href"), "trace_id": link.text}
shot("query-exemplars")
driver.get(link.get_attribute("href"))
until("#waterfall .span-row")
out["exemplars"]["waterfall_spans"] = len(css("#waterfall .span-row"))

# --- targets and store status ------------------------------------------------------------------
out["first_paint_ms"]["targets"] = fresh(f"{args.metrics}/#/targets")
until("tr.target")
# Read in one script: the page re-renders the targets every 10 s.
out["targets"] = driver.execute_script("""
return [...document.querySelectorAll('tr.target')].map(r => ({
  job: r.closest('[data-job]').dataset.job, endpoint: r.cells[0].textContent,
  health: r.dataset.health, state_text: r.cells[1].textContent}));
""")
out["store_status"] = css("#store-status")[0].text if css("#store-status") else ""
shot("targets")

# --- alerts and rules --------------------------------------------------------------------------
out["first_paint_ms"]["alerts"] = fresh(f"{args.metrics}/#/alerts")
until('.alert-rule[data-state="firing"] tr.alert')
until("tr.rule")
out["rules"] = driver.execute_script("""
const rules = {};
for (const c of document.querySelectorAll('.alert-rule')) rules[c.dataset.rule] = c.dataset.state;
return {alert_rules: rules,
  firing_text: document.querySelector('.alert-rule[data-state="firing"]').textContent,
  health: [...document.querySelectorAll('tr.rule')].map(r => r.dataset.health)};
""")
shot("alerts")

# --- add a panel from the query page, then the dashboard ---------------------------------------
q = urllib.parse.urlencode({"expr": args.seed_expr, "tab": "graph", "range": "5m"})
open_page(f"{args.metrics}/#/query?{q}")
until("#chart[data-series]")
css("#add-panel")[0].click()
alert = wait.until(lambda d: d.switch_to.alert)
alert.send_keys("Added from query page")
alert.accept()
out["first_paint_ms"]["dashboard"] = fresh(f"{args.metrics}/#/dashboard?range=15m&refresh=off")
until(".panel .chart[data-series]", 11)
out["dashboard"] = {e.get_attribute("data-title"): e.find_element(By.CSS_SELECTOR, ".chart").get_attribute("data-series")
                    for e in css(".panel")}
shot("dashboard")

# --- traces: search through the form, the waterfall, the service map ---------------------------
out["first_paint_ms"]["traces"] = fresh(f"{args.traces}/#/traces")
until(f"#svc option[value='{args.service}']")
Select(css("#svc")[0]).select_by_value(args.service)
Select(css("#lookback")[0]).select_by_value("1h")
css("#find")[0].click()
until("#trace-results tr.trace-item")
out["trace_search"] = {"ids": [r.get_attribute("data-trace-id") for r in css("#trace-results tr.trace-item")],
                       "scatter_dots": len(css("#trace-scatter circle"))}
shot("trace-search")
row = [r for r in css("#trace-results tr.trace-item") if r.get_attribute("data-trace-id") == args.trace_id]
if row:
    row[0].click()
    until("#waterfall .span-row")
    spans = css("#waterfall .span-row")
    out["waterfall"] = [{"span_id": s.get_attribute("data-span-id"), "service": s.get_attribute("data-service"),
                         "name": s.find_element(By.CSS_SELECTOR, ".wf-name").text} for s in spans]
    spans[-1].click()
    until(".wf-detail")
    out["span_detail"] = css(".wf-detail")[0].text
    shot("trace-waterfall")
    # The client span carries an event: its details list it under logs/events.
    [s for s in spans if "reserve-stock" in s.text][0].click()
    until(".wf-detail", 2)
    out["event_detail"] = [d.text for d in css(".wf-detail") if "reserve-stock" in d.text]

# Search by tag and by duration through the form.
def search(tags="", min_duration=""):
    open_page(f"{args.traces}/#/traces?service={args.service}&lookback=1h")
    until("#trace-results tr.trace-item, #no-traces")
    css("#tags")[0].clear()
    css("#tags")[0].send_keys(tags)
    css("#min-duration")[0].clear()
    css("#min-duration")[0].send_keys(min_duration)
    before = css("#trace-search-out")[0].get_attribute("innerHTML")
    css("#find")[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#trace-results tr.trace-item, #no-traces, #trace-error")
               and css("#trace-search-out")[0].get_attribute("innerHTML") != before)
    return [r.get_attribute("data-trace-id") for r in css("#trace-results tr.trace-item")]

out["search_error_tag"] = search(tags="error=true")
# A custom time range that ends before the test began finds nothing.
open_page(f"{args.traces}/#/traces?service={args.service}&lookback=1h")
until("#trace-results tr.trace-item")
Select(css("#lookback")[0]).select_by_value("custom")
for field, when in [("#start", "-3h"), ("#end", "-2h")]:
    driver.execute_script(
        "const d = new Date(Date.now() + (arguments[1] === '-3h' ? -3 : -2) * 3600e3);"
        "arguments[0].value = new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);",
        css(field)[0], when)
css("#find")[0].click()
until("#no-traces")
out["search_past_range"] = driver.current_url
out["search_min_duration"] = search(min_duration="250ms")
shot("trace-search-duration")
out["first_paint_ms"]["map"] = fresh(f"{args.traces}/#/map?lookback=1h")
until("#service-map g.edge")
out["service_map"] = [{"parent": e.get_attribute("data-parent"), "child": e.get_attribute("data-child"),
                       "calls": int(e.get_attribute("data-calls"))} for e in css("#service-map g.edge")]
shot("service-map")

# --- federation: which replica the series follow -----------------------------------------------
out["first_paint_ms"]["federation"] = fresh(f"{args.federation}/#/targets")
until("#replica-leaders tr", 2)
out["federation_leaders"] = [{"replica": r.find_elements(By.TAG_NAME, "td")[0].text,
                              "series": r.find_elements(By.TAG_NAME, "td")[1].text}
                             for r in css("#replica-leaders tr")[1:]]
until("tr.dedup-row")
out["federation_series"] = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in css("tr.dedup-row")]
driver.execute_script("document.querySelector('#replica-leaders').scrollIntoView()")
shot("federation")

# --- balancer: servers with health, then DRAIN one through the admin action ---------------------
out["first_paint_ms"]["balancer"] = fresh(f"{args.balancer}/ui/#/balancer")
until("tr.stat-row.server", 2)
wait.until(lambda d: any(r.get_attribute("data-status").startswith("DOWN")
                         for r in d.find_elements(By.CSS_SELECTOR, "tr.stat-row.server")))
# The page re-renders every 5 s, so reads and the admin action each run as one script.
out["balancer"] = {"servers": driver.execute_script(
    "return [...document.querySelectorAll('tr.stat-row.server')].map(r => ({name: r.dataset.name, status: r.dataset.status}))")}
shot("balancer")
driver.execute_script("""
const card = document.querySelector(".card[data-proxy='prometheus_backends']");
card.querySelector("input[value='app']").checked = true;
card.querySelector('select').value = 'drain';
card.querySelector('button.apply').click();
""")
out["balancer"]["admin_result"] = wait.until(lambda d: d.execute_script(
    "const t = document.querySelector('.admin-result').textContent; return t.startsWith('result') ? t : null"))
out["balancer"]["after_drain"] = wait.until(lambda d: d.execute_script(
    "const r = document.querySelector(\"tr.stat-row.server[data-name='app']\"); "
    "return r && r.dataset.status === 'DRAIN' ? r.dataset.status : null"))
shot("balancer-drained")

# --- alertmanager: the replica's alert, silenced from its row, then the silence expired ----------
out["first_paint_ms"]["alertmanager"] = fresh(f"{args.alertmanager}/#/alertmanager")
until('tr.am-alert[data-alertname="UiAlwaysFiring"]')
am = {"group_receiver": driver.execute_script(
    "return document.querySelector('tr.am-alert[data-alertname=\"UiAlwaysFiring\"]').closest('.am-group').dataset.receiver")}
driver.execute_script("document.querySelector('tr.am-alert[data-alertname=\"UiAlwaysFiring\"] button.silence-alert').click()")
css("#silence-comment")[0].send_keys("ui test")
css("#silence-create")[0].click()
am["created"] = wait.until(lambda d: d.execute_script(
    "const t = document.querySelector('.am-message').textContent; return t.startsWith('created') ? t : null"))
until('tr.am-silence[data-state="active"]')
am["suppressed"] = wait.until(lambda d: d.execute_script(
    "const r = document.querySelector('tr.am-alert[data-alertname=\"UiAlwaysFiring\"]'); "
    "return r && r.dataset.state === 'suppressed' ? r.dataset.state : null"))
am["config"] = css("#am-config")[0].text
shot("alertmanager")
driver.execute_script("document.querySelector('tr.am-silence[data-state=\"active\"] button.expire').click()")
am["expired"] = wait.until(lambda d: d.execute_script(
    "const r = document.querySelector('tr.am-silence'); return r && r.dataset.state === 'expired' ? 'expired' : null"))
out["alertmanager"] = am

logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"] if hasattr(driver, "get_log") else []
out["console_errors"] = [e["message"] for e in logs]
driver.quit()
print(json.dumps(out))
