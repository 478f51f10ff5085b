#!/usr/bin/env bash
# Check: `bloodmatch import --url` over HTTPS against a loopback server with a throwaway CA.
# A verified fetch loads the snapshot; the same server without the CA is refused (exit 4, nothing
# loaded); a missing file is retried and then reported unreachable (exit 4); a plain http:// URL
# is refused as a usage error. Uses a throwaway database; stops only the server it started.
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server=""
on_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; }
scratch_db_check check_feed feed-https
export BLOODMATCH_LOG_LEVEL=error

# Throwaway CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=BloodMatch test CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null

"$bm" migrate >/dev/null 2>&1
"$bm" generate --seed 5 --sites-file Data/sites.csv --units 300 --out "$work/gen" >/dev/null
"$bm" sites import Data/sites.csv >/dev/null 2>&1
mkdir -p "$work/www"
csv=$(ls "$work/gen/snapshots/" | grep '^DC001-.*\.csv$' | head -1)
cp "$work/gen/snapshots/${csv%.csv}".* "$work/www/"
https_port=$(( 56000 + RANDOM % 2000 ))
python3 - "$work/www" "$https_port" "$work/server.pem" "$work/server.key" 2>/dev/null <<'PY' &
import http.server, ssl, sys, functools
root, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
handler.log_message = lambda *a: None
httpd = http.server.HTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.timeout = 1
import time; end = time.time() + 120
while time.time() < end: httpd.handle_request()
PY
server=$!
sleep 1
url="https://127.0.0.1:$https_port/$csv"
fail=0
results=()
expect() {  # name expected_rc actual_rc
  if [ "$2" = "$3" ]; then results+=("\"$1\":\"ok\""); else results+=("\"$1\":\"FAILED (exit $3, expected $2)\""); fail=1; fi
}
"$bm" import --url "$url" >/dev/null 2>&1; expect untrusted_certificate 4 $?
loaded=$(psql_pg -d "$db" -c "SELECT count(*) FROM bm.centre_status")
[ "$loaded" = 0 ] || { results+=("\"untrusted_loaded_nothing\":\"FAILED\""); fail=1; }
BLOODMATCH_FEED_CA_FILE="$work/ca.pem" "$bm" import --url "$url" >/dev/null 2>&1; expect verified_fetch 0 $?
outcome=$(psql_pg -d "$db" -c "SELECT outcome FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")
[ "$outcome" = loaded ] && results+=("\"recorded_outcome\":\"loaded\"") || { results+=("\"recorded_outcome\":\"FAILED: $outcome\""); fail=1; }
BLOODMATCH_FEED_CA_FILE="$work/ca.pem" "$bm" import --url "https://127.0.0.1:$https_port/DC001-missing.csv" >/dev/null 2>&1; expect missing_file 4 $?
"$bm" import --url "http://127.0.0.1:$https_port/$csv" >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ] && [ "$rc" != 4 ] && results+=("\"plain_http_refused\":\"ok\"") || { results+=("\"plain_http_refused\":\"FAILED (exit $rc)\""); fail=1; }
pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"feed-https\",$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
exit $fail
