#!/usr/bin/env bash
# The alerting rules parse (promtool check rules) and each alert fires on the failure it is for,
# naming the centre or instance, with its runbook link (promtool test rules); every runbook link
# points at a section that exists in Jobs/RUNBOOK.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v promtool >/dev/null || { echo "promtool missing: run Jobs/setup.sh" >&2; exit 1; }
promtool check rules Jobs/alerts/bloodmatch.rules.yml
(cd Jobs/alerts && promtool test rules bloodmatch.rules.test.yml)
missing=0
for anchor in $(grep -o 'RUNBOOK.md#[a-z0-9-]*' Jobs/alerts/bloodmatch.rules.yml | sort -u | cut -d'#' -f2); do
  # GitHub-style anchors: "## alert-centre-data-stale" → #alert-centre-data-stale
  if ! grep -qx "## $anchor" Jobs/RUNBOOK.md; then echo "runbook section missing: $anchor" >&2; missing=1; fi
done
[ $missing = 0 ]
echo '{"check":"alerts","pass":true}'
