#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine (idempotent; quiet when all is there).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v python3 >/dev/null || need+=(python3)
command -v promtool >/dev/null || need+=(prometheus)   # promtool checks Jobs/alerts/
command -v pip3 >/dev/null || command -v pip >/dev/null || need+=(python3-pip)
command -v wrk >/dev/null || need+=(wrk)                 # HTTP load (Jobs/checks/http-api.sh, Jobs/bench/http.sh)
command -v slowhttptest >/dev/null || need+=(slowhttptest)   # slow-client attack in Jobs/bench/http.sh
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
# The dispatcher console's browser check drives Debian's headless Chromium through its driver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# The exact-optimum check of the batch optimiser solves MILPs with HiGHS through scipy (≥ 1.9).
python3 -c 'from scipy.optimize import milp' 2>/dev/null || need+=(python3-scipy python3-numpy)
if ((${#need[@]})); then
  [ "$(id -u)" = 0 ] || { echo "missing packages: ${need[*]}; run as root or install them" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
# schemathesis (PyPI) checks the served OpenAPI document against the running API.
if ! command -v schemathesis >/dev/null; then
  python3 -m pip install -q schemathesis 2>/dev/null || python3 -m pip install -q --break-system-packages schemathesis
fi
# fhir.resources (the FHIR R5 models every resource is validated against) and fhirpy (a real FHIR
# client) drive Jobs/checks/fhir.sh. Versions are pinned: R5 models are fhir.resources 7 and later.
if ! python3 -c 'import fhir.resources, fhirpy' 2>/dev/null; then
  python3 -m pip install -q 'fhir.resources==8.3.0' 'fhirpy==2.3.1' 2>/dev/null \
    || python3 -m pip install -q --break-system-packages 'fhir.resources==8.3.0' 'fhirpy==2.3.1'
fi
# Selenium (PyPI) drives Chromium in Jobs/checks/console-browser.sh; axe-selenium-python carries
# axe-core, the accessibility rules engine that check runs on each page (WCAG 2 A and AA).
if ! python3 -c 'import selenium, axe_selenium_python' 2>/dev/null; then
  python3 -m pip install -q 'selenium==4.51.0' 'axe-selenium-python==2.1.6' 2>/dev/null \
    || python3 -m pip install -q --break-system-packages 'selenium==4.51.0' 'axe-selenium-python==2.1.6'
fi
# When python3 is not Debian's own (a pyenv, say), the apt package does not reach it: use pip.
if ! python3 -c 'from scipy.optimize import milp' 2>/dev/null; then
  python3 -m pip install -q 'scipy>=1.9' 2>/dev/null || python3 -m pip install -q --break-system-packages 'scipy>=1.9'
fi
command -v swift >/dev/null || { echo "swift is not on PATH (expected Swift 6.3 at /opt/swift)" >&2; exit 1; }
