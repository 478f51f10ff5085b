#!/usr/bin/env bash
# Installs Jobs/crontab for the current user with BLOODMATCH_HOME set to this checkout, keeping any
# other entries. Installs the cron daemon with apt-get when missing (root only).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v crontab >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "cron is not installed; run as root or install it" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cron >/dev/null
fi
mkdir -p "$here/var/spool" "$here/var/log"
current=$(crontab -l 2>/dev/null | sed '/# >>> bloodmatch/,/# <<< bloodmatch/d' || true)
{
  [ -n "$current" ] && echo "$current"
  echo "# >>> bloodmatch ($here)"
  sed "s|^BLOODMATCH_HOME=.*|BLOODMATCH_HOME=$here|" "$here/Jobs/crontab"
  echo "# <<< bloodmatch"
} | crontab -
echo "installed the BloodMatch crontab for $(id -un) (BLOODMATCH_HOME=$here)"
