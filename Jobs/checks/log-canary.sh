#!/usr/bin/env bash
# No secret in any output: plants canary passwords in DATABASE_URL (an unreachable server, and the
# real server with a wrong password) and runs commands through their failure paths, then greps
# every line they printed (stdout and the JSON logs on stderr) for the canaries. The API-key and
# request-body canaries of `bloodmatch serve` are in Jobs/checks/api-observability.sh.
# Prints one JSON line.
set -uo pipefail
cd "$(dirname "$0")/../.."
bm=$(pwd)/${BLOODMATCH_BIN:-.build/debug/bloodmatch}
[ -x "$bm" ] || { echo "no bloodmatch binary at $bm" >&2; exit 1; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
port=${BLOODMATCH_DB_SOCKET##*.}
out=$(mktemp /tmp/bm-canary.XXXXXX)
trap 'rm -f "$out"' EXIT
canary="CanaryPw-$RANDOM$RANDOM-do-not-log"
export BLOODMATCH_LOG_LEVEL=debug
for url in "postgres://bloodmatch_app:${canary}@127.0.0.1:9/bloodmatch?sslmode=disable" \
           "postgres://bloodmatch_app:${canary}@127.0.0.1:${port}/bloodmatch?sslmode=disable" \
           "postgres://bloodmatch_app:${canary}@[bad-host/bloodmatch"; do
  for cmd in "migrate" "stock --near H0001 --component RBC" "audit verify" "reservation list" \
             "match --hospital H0001 --component RBC --abo O --rhd NEG --index /nonexistent" \
             "trace B000126000001" "index build --out /tmp/bm-canary-index-$$"; do
    # shellcheck disable=SC2086
    DATABASE_URL="$url" timeout 30 "$bm" $cmd >>"$out" 2>&1
  done
done
rm -f "/tmp/bm-canary-index-$$"
lines=$(wc -l <"$out")
leaks=$(grep -c "$canary" "$out")
masked=$(grep -c 'bloodmatch_app@\|\*\*\*' "$out")
if [ "$leaks" -eq 0 ] && [ "$lines" -gt 20 ]; then
  printf '{"check":"log-canary","pass":true,"lines_checked":%s,"leaks":0,"lines_naming_the_target_without_secret":%s}\n' "$lines" "$masked"
else
  grep -n "$canary" "$out" | head -5 >&2
  printf '{"check":"log-canary","pass":false,"lines_checked":%s,"leaks":%s}\n' "$lines" "$leaks"
  exit 1
fi
