#!/usr/bin/env bash
# Check: HTTP/1.1 edges of `bloodmatch serve`, with raw requests on loopback (a throwaway database):
# - a malformed chunk size is 400, and a client that stops mid-body is counted as a client error
#   (4xx), never 5xx, in the metrics
# - HEAD on a GET route answers as GET would (status, Content-Length) without a body, and the
#   connection stays usable
# - an HTTP/1.0 request without keep-alive has its connection closed after the answer
# - Content-Encoding other than identity is 415; a Transfer-Encoding other than chunked is 501
# - slow bodies that keep arriving after their 408 (body deadline 1 s, 6 rounds of 40): every one
#   answered 408 and the server still up (a body read left running past its deadline while the
#   server read the same connection killed the process, "Illegal instruction", in 3 of 6 runs before
#   the fix)
# - with TLS: TLS 1.2 without a forward-secret AEAD suite is refused (a CBC or RSA-key-exchange
#   suite), ECDHE with AES-GCM is accepted, and answers carry Strict-Transport-Security
# Bounded: about 30 s. Prints one JSON line; exits 1 on failure. Stops only the servers it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
servers=()
on_cleanup() { local p; for p in "${servers[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; }
scratch_db_check check_protocol http-protocol
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 3 --sites-file Data/sites.csv --units 600 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
key=$("$bm" hospital key create H0001 --label protocol --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
free_port() { local p=$(( $1 + RANDOM % 100 )); while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$(( $1 + RANDOM % 100 )); done; echo $p; }
port=$(free_port 18900)
"$bm" serve --port "$port" 2>"$work/serve.log" & servers+=($!)
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.2; done

# raw REQUEST: the status line and whether the server closed the connection within 2 s.
raw() { python3 - "$port" "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(2); t0 = time.time(); data = b""; closed = False
try:
    while True:
        chunk = s.recv(65536)
        if not chunk: closed = True; break
        data += chunk
except socket.timeout:
    pass
print(data.split(b"\r\n")[0].decode(), "closed" if closed else "open")
PY
}
A="Authorization: Bearer $key"
J="Content-Type: application/json"
expect() {  # NAME WANTED GOT
  [[ "$3" == $2* ]] && ok "$1" || bad "$1" "wanted '$2', got '$3'"
}
expect malformed_chunk_400 "HTTP/1.1 400" "$(raw "POST /v1/matches HTTP/1.1\r\nHost: x\r\n$A\r\n$J\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n")"
expect content_encoding_415 "HTTP/1.1 415" "$(raw "POST /v1/matches HTTP/1.1\r\nHost: x\r\n$A\r\n$J\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")"
expect transfer_encoding_501 "HTTP/1.1 501" "$(raw "POST /v1/matches HTTP/1.1\r\nHost: x\r\n$A\r\n$J\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")"
expect http10_closed "HTTP/1.1 200 OK closed" "$(raw "GET /health HTTP/1.0\r\n\r\n")"
expect http10_keep_alive_kept "HTTP/1.1 200 OK open" "$(raw "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")"
# A client that stops mid-body.
python3 - "$port" "$key" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("POST /v1/matches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":" % sys.argv[2]).encode())
time.sleep(0.3); s.close()
PY
sleep 1
# (501 is the answer the unsupported Transfer-Encoding above must get; any other 5xx is a fault.)
fivexx=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^bloodmatch_http_requests_total\{route="\/v1\/matches"/ && /status="5/ && !/status="501"/ {n += $2} END {print n + 0}')
[ "$fivexx" = 0 ] && ok no_5xx_for_client_faults || bad no_5xx_for_client_faults "$fivexx requests to /v1/matches counted 5xx"

# HEAD: GET's status and length, no body; the connection then serves a GET.
get_len=$(curl -s -o /dev/null -w '%{size_download}' -H "$A" "http://127.0.0.1:$port/v1/availability?component=RBC&abo=O&rhd=NEG")
head_out=$(curl -s -I -H "$A" "http://127.0.0.1:$port/v1/availability?component=RBC&abo=O&rhd=NEG" | tr -d '\r')
{ echo "$head_out" | grep -q "^HTTP/1.1 200" && echo "$head_out" | grep -qi "^content-length: $get_len$"; } && ok "head_like_get_${get_len}_bytes" \
  || bad head "$(echo "$head_out" | head -3 | tr '\n' ' ') (GET: $get_len bytes)"
reuse=$(curl -s -I "http://127.0.0.1:$port/health" -o /dev/null --next -s -o /dev/null "http://127.0.0.1:$port/health" -w '%{http_code}:%{num_connects}')
[ "$reuse" = "200:0" ] && ok head_then_get_on_one_connection || bad head_then_get "$reuse"

# Slow bodies past their deadline whose bytes keep coming: the server answers 408 and stays up.
dport=$(free_port 19100)
"$bm" serve --port "$dport" --body-deadline 1 --rate-limit 1000 --rate-burst 1000 2>"$work/serve-deadline.log" & servers+=($!)
deadline_server=$!
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$dport/ready" >/dev/null 2>&1 && break; sleep 0.2; done
late=$(python3 - "$dport" "$key" <<'PY'
import asyncio, json, sys, time
port, key = int(sys.argv[1]), sys.argv[2]
statuses = {}
async def one(i):
    # 200 bytes announced, one byte every 15 ms for 2.5 s: the 408 comes at 1 s, the bytes go on.
    await asyncio.sleep(i * 0.01)
    status = "unanswered"
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"POST /v1/matches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n").encode())
        answer = asyncio.ensure_future(reader.readline())
        start = time.monotonic()
        while time.monotonic() - start < 2.5:
            try:
                writer.write(b" ")
                await writer.drain()
            except Exception:
                break
            await asyncio.sleep(0.015)
        line = await asyncio.wait_for(answer, 2)
        status = line.split()[1].decode() if line else "closed"
        writer.close()
    except Exception as error:
        status = type(error).__name__
    statuses[status] = statuses.get(status, 0) + 1
async def main():
    for _ in range(6):
        await asyncio.gather(*(one(i) for i in range(40)))
    print(json.dumps(statuses, sort_keys=True))
asyncio.run(main())
PY
)
sleep 0.5
if kill -0 "$deadline_server" 2>/dev/null && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$dport/health")" = 200 ]; then
  [ "$late" = '{"408": 240}' ] && ok late_body_bytes_240_answered_408_server_up || bad late_body_bytes "answers $late"
else
  wait "$deadline_server"; bad late_body_bytes_server_up "the server ended (exit $?) after answers $late: $(tail -c 300 "$work/serve-deadline.log")"
fi

# TLS: suites and HSTS.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null
tport=$(free_port 19000)
"$bm" serve --port "$tport" --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" 2>"$work/serve-tls.log" & servers+=($!)
for _ in $(seq 1 150); do curl -sf --cacert "$work/tls.pem" "https://127.0.0.1:$tport/health" >/dev/null 2>&1 && break; sleep 0.2; done
suite() { timeout 5 openssl s_client -connect "127.0.0.1:$tport" -tls1_2 -cipher "$1" </dev/null 2>/dev/null | grep -c "^ *Cipher *: $1"; }
[ "$(suite ECDHE-RSA-AES128-GCM-SHA256)" = 1 ] && ok tls12_ecdhe_gcm_accepted || bad tls12_ecdhe_gcm_accepted "handshake failed"
refused=""
for weak in ECDHE-RSA-AES128-SHA AES128-GCM-SHA256 AES256-SHA; do [ "$(suite "$weak")" = 0 ] || refused+="$weak "; done
[ -z "$refused" ] && ok tls12_cbc_and_rsa_kx_refused || bad tls12_weak_suites "accepted: $refused"
hsts=$(curl -s -D - -o /dev/null --cacert "$work/tls.pem" "https://127.0.0.1:$tport/health" | tr -d '\r' | grep -i '^strict-transport-security:' | tr 'A-Z' 'a-z')
[ "$hsts" = "strict-transport-security: max-age=31536000" ] && ok hsts || bad hsts "'$hsts'"

printf '{"check":"http-protocol","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
