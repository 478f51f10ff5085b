#!/usr/bin/env bash
# The dispatcher console's first view at national scale (500 sites, 1,000,000 units), in headless
# Chromium: from navigation start to the map and table drawn with every centre (the page's
# `bm-first-view` mark), 7 loads after log-in, median and worst; next to the anchor measured in the
# same run, the static log-in page (HTML + styles, no data) loaded the same way. Also the payload
# of each file and of the overview, and the overview's server time (curl, 30 requests).
# Release build; a throwaway database of the private cluster (KEEP_DB=1 keeps and reuses it).
# Prints one JSON object.
#   Jobs/bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env)"
swift build -c release --product bloodmatch 2>&1 | grep -E "error|Build complete" >&2 || true
bm="$root/.build/release/bloodmatch"
data="$root/var/bench/national-500-1000000"
[ -f "$data/sites.csv" ] || "$bm" generate --seed 42 --sites 500 --units 1000000 --out "$data" >/dev/null
sock_dir=$(dirname "$BLOODMATCH_DB_SOCKET"); pgport=${BLOODMATCH_DB_SOCKET##*.}
psql_pg() { runuser -u postgres -- psql -X -qAt -h "$sock_dir" -p "$pgport" "$@"; }
db=bm_bench_console
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
work=$(mktemp -d /tmp/bm-console-bench.XXXXXX)
console=""
login=bench_console_$$
cleanup() {
  [ -n "$console" ] && kill "$console" 2>/dev/null && wait "$console" 2>/dev/null
  [ "${KEEP_DB:-0}" = 1 ] || psql_pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  psql_pg -d postgres -c "DROP ROLE IF EXISTS $login" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
if [ "${KEEP_DB:-0}" = 1 ] && psql_pg -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  "$bm" migrate >/dev/null
else
  psql_pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  psql_pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner" >/dev/null
  "$bm" migrate >/dev/null
  "$bm" sites import "$data/sites.csv" >/dev/null
  "$bm" import "$data"/snapshots/*.csv >/dev/null || true
fi
"$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1
"$bm" operator add "$login" --role viewer --password-file "$work/pw" >/dev/null
port=$(( 18500 + RANDOM % 200 ))
"$bm" console --port "$port" --index "$work/index.bmidx" 2>"$work/console.log" &
console=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/console/login" >/dev/null 2>&1 && break; sleep 0.2; done
python3 - "http://127.0.0.1:$port" "$login" "$work/pw" "$data/sites.csv" <<'PY'
import json, statistics, subprocess, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
base, login, pwfile, sites = sys.argv[1:]
centres = sum(1 for line in open(sites) if ",distribution_centre," in line)
o = webdriver.ChromeOptions()
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"]:
    o.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
def load_ms(url, ready):
    d.get(url)
    WebDriverWait(d, 30, poll_frequency=0.02).until(ready)
    return d.execute_script(ready.mark_script)
def login_ready(drv): return drv.find_elements(By.ID, "login")
login_ready.mark_script = "return performance.getEntriesByType('navigation')[0].loadEventEnd"
def first_view(drv): return drv.execute_script("return performance.getEntriesByName('bm-first-view').length") > 0
first_view.mark_script = "return performance.getEntriesByName('bm-first-view')[0].startTime"
d.get(base + "/console/login")
d.find_element(By.ID, "operator").send_keys(login)
d.find_element(By.ID, "password").send_keys(open(pwfile).read().strip())
d.find_element(By.ID, "login").click()
WebDriverWait(d, 60).until(first_view)
shown = len(d.find_elements(By.CSS_SELECTOR, "#map circle.centre"))
views, anchors = [], []
for i in range(7):
    anchors.append(load_ms(base + "/console/login", login_ready))
    views.append(load_ms(base + "/console", first_view))
sizes = {}
for e in d.execute_script("return performance.getEntriesByType('resource').map(r => [r.name, r.encodedBodySize])"):
    sizes[e[0].replace(base, "").split("?")[0]] = e[1]
nav = d.execute_script("return performance.getEntriesByType('navigation')[0].encodedBodySize")
sizes["/console"] = nav
d.quit()
cookie = None
# The overview's own server time, outside the browser.
jar = "/tmp/bm-console-bench-jar-%d" % time.time_ns()
subprocess.run(["curl", "-s", "-o", "/dev/null", "-c", jar, "-X", "POST", base + "/console/login", "-H", "Origin: " + base,
                "--data-urlencode", "operator=" + login, "--data-urlencode", "password=" + open(pwfile).read().strip()], check=True)
server = []
for i in range(30):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-b", jar, "-w", "%{time_total} %{size_download}", base + "/console/api/overview?component=RBC&abo=O&rhd=NEG"],
                         capture_output=True, text=True).stdout.split()
    server.append(float(out[0]) * 1000); overview_bytes = int(out[1])
print(json.dumps({
    "dataset": {"sites": 500, "units": 1000000, "centres": centres}, "centres_drawn": shown,
    "first_view_ms": {"median": round(statistics.median(views), 1), "worst": round(max(views), 1), "runs": [round(v, 1) for v in views]},
    "anchor_static_login_page_ms": {"median": round(statistics.median(anchors), 1), "worst": round(max(anchors), 1)},
    "ratio_median": round(statistics.median(views) / max(0.1, statistics.median(anchors)), 2),
    "bar_first_view_at_most_1000_ms": max(views) <= 1000,
    "payload_bytes": sizes, "overview_bytes_O_neg": overview_bytes,
    "overview_server_ms": {"median": round(statistics.median(server), 1), "p90": round(sorted(server)[26], 1)},
}, indent=1))
PY
