#!/usr/bin/env bash
# Starts an S3-protocol server on loopback for the S3 backend's tests: moto's standalone server,
# installed from PyPI when missing. Writes .build/test-s3.env with the variables the tests read
# (INFINITY_TEST_S3_URL and AWS credentials for the server); `source` it before `swift test`.
# The server logs every request it answers to .build/test-s3.log (for another port, both names
# end in -PORT).
#
#   Scripts/start-test-s3.sh [PORT (default 9000)]
#
# Against another S3 endpoint, skip this and set INFINITY_TEST_S3_URL
# (s3://BUCKET?endpoint=URL&region=REGION) and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-9000}
mkdir -p .build
# The default port's files keep plain names (CI and the tests use them); others are suffixed.
suffix=""; [ "$port" = 9000 ] || suffix="-$port"
log=".build/test-s3$suffix.log"
env_file=".build/test-s3$suffix.env"

answering() {
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=2)" >/dev/null 2>&1
}
if ! python3 -c "import moto.server, flask" >/dev/null 2>&1; then
    echo "installing moto[server] from PyPI…" >&2
    python3 -m pip install --quiet "moto[server]" >&2 \
        || python3 -m pip install --quiet --break-system-packages "moto[server]" >&2
fi
if ! answering; then
    nohup python3 -m moto.server -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
    for _ in $(seq 1 100); do
        answering && break
        sleep 0.2
    done
    answering || { echo "the S3 test server did not start on port $port (see $log)" >&2; exit 1; }
fi
cat > "$env_file" <<EOF
export INFINITY_TEST_S3_URL="s3://infinity-test?endpoint=http://127.0.0.1:$port&region=us-east-1"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
EOF
echo "S3 test server on http://127.0.0.1:$port (variables in $env_file, requests logged in $log)" >&2
