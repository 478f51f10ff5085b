#!/usr/bin/env bash
# The alerting rules parse (promtool check rules) and each alert fires on the failure it is for,
# naming the centre or instance, with its runbook link (promtool test rules); every alert in the
# rules has at least one test where it fires and one where it stays quiet; every runbook link
# points at a section that exists in Jobs/RUNBOOK.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v promtool >/dev/null || { echo "promtool missing: run Jobs/setup.sh" >&2; exit 1; }
promtool check rules Jobs/alerts/bloodmatch.rules.yml
(cd Jobs/alerts && promtool test rules bloodmatch.rules.test.yml)
missing=0
# Each alert named in a test that expects it firing (`exp_alerts:` then a list) and in one that
# expects none (`exp_alerts: []`).
tested=$(awk '/alertname:/ {name = $NF} /exp_alerts: \[\]/ {print name " quiet"; next} /exp_alerts:$/ {print name " fires"}' \
  Jobs/alerts/bloodmatch.rules.test.yml | sort -u)
for alert in $(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' Jobs/alerts/bloodmatch.rules.yml); do
  for want in fires quiet; do
    if ! grep -qx "$alert $want" <<<"$tested"; then
      echo "no promtool test where $alert $([ $want = fires ] && echo fires || echo 'stays quiet') (Jobs/alerts/bloodmatch.rules.test.yml)" >&2
      missing=1
    fi
  done
done
for anchor in $(grep -o 'RUNBOOK.md#[a-z0-9-]*' Jobs/alerts/bloodmatch.rules.yml | sort -u | cut -d'#' -f2); do
  # GitHub-style anchors: "## alert-centre-data-stale" → #alert-centre-data-stale
  if ! grep -qx "## $anchor" Jobs/RUNBOOK.md; then echo "runbook section missing: $anchor" >&2; missing=1; fi
done
if [ $missing != 0 ]; then echo '{"check":"alerts","pass":false}'; exit 1; fi
echo '{"check":"alerts","pass":true}'
