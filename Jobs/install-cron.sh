#!/usr/bin/env bash
# Installs Jobs/crontab for the current user with BLOODMATCH_HOME set to this checkout, keeping any
# other entries. Installs the cron daemon with apt-get when missing (root only).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v crontab >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "cron is not installed; run as root or install it" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cron >/dev/null
fi
mkdir -p "$here/var/spool" "$here/var/log" "$here/var/audit/checkpoints"
# The jobs' own login (a member of bloodmatch_job), made once; its password goes to
# ~/.config/bloodmatch/operators/bm_cron (mode 600), where the jobs read it.
bm="$here/.build/release/bloodmatch"; [ -x "$bm" ] || bm="$here/.build/debug/bloodmatch"
if [ -x "$bm" ]; then
  if ! (cd "$here" && "$bm" operator list 2>/dev/null | grep -q "^bm_cron	"); then
    (cd "$here" && "$bm" operator add bm_cron --role job) || echo "could not create the job login bm_cron; create it with: bloodmatch operator add bm_cron --role job" >&2
  fi
else
  echo "no bloodmatch binary yet: after building, run: bloodmatch operator add bm_cron --role job" >&2
fi
current=$(crontab -l 2>/dev/null | sed '/# >>> bloodmatch/,/# <<< bloodmatch/d' || true)
{
  [ -n "$current" ] && echo "$current"
  echo "# >>> bloodmatch ($here)"
  sed "s|^BLOODMATCH_HOME=.*|BLOODMATCH_HOME=$here|" "$here/Jobs/crontab"
  echo "# <<< bloodmatch"
} | crontab -
echo "installed the BloodMatch crontab for $(id -un) (BLOODMATCH_HOME=$here)"
