# shellcheck shell=bash
# The S3-compatible test server: s3rver behind the verifying front
# (front.mjs), both on 127.0.0.1. Source this file, then:
#
#     s3_start <tmpdir>    # starts them, exports the variables below
#     ...
#     s3_stop              # stops them (safe to call twice, or when never started)
#
# s3_start installs the test's npm packages first when tests/node_modules
# lacks them (npm ci --prefix tests, from the committed package-lock.json),
# keeps s3rver's files and the logs in <tmpdir>/s3/, makes a random access key
# id and secret (the secret has '/' and '+' like AWS's), and exports:
#
#   S3_PORT               the front's port (what polaimg and nginx talk to)
#   S3_PID                the node process running the front and s3rver
#   S3_ENDPOINT           http://127.0.0.1:$S3_PORT
#   S3_BUCKET S3_REGION S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY
#   S3_DIR                <tmpdir>/s3 (front.log holds the front's stderr)
#   S3_CONF_LINES         polaimg.conf lines for this server, one per line
#
# Fault injection for outage tests (see front.mjs for all modes):
#
#     curl -s -XPOST "$S3_ENDPOINT/__fault" -d '{"mode":"down"}'   # connections dropped
#     curl -s -XPOST "$S3_ENDPOINT/__fault" -d '{"mode":"error","count":1}'  # next request 503
#     curl -s -XPOST "$S3_ENDPOINT/__fault" -d '{"mode":"none"}'   # healthy again
#     curl -s "$S3_ENDPOINT/__requests"                            # what reached the front

# --openssl-legacy-provider: s3rver makes its ListObjectsV2 continuation
# tokens with DES, which OpenSSL 3 keeps in the legacy provider.
S3_START_SH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
S3_TESTS_DIR="$(cd "$S3_START_SH_DIR/../.." && pwd)"
S3_PID=""

s3_rand() {
	# $1 random characters from the alphabet $2 (no pipe: the harness runs
	# with pipefail, and tr | head ends in SIGPIPE)
	node -e 'const c = require("node:crypto"); let s = "";
		while (s.length < +process.argv[1]) s += process.argv[2][c.randomInt(process.argv[2].length)];
		process.stdout.write(s);' "$1" "$2"
}

s3_start() {
	local tmp="${1:?usage: s3_start <tmpdir>}" out i
	if ! [ -f "$S3_TESTS_DIR/node_modules/s3rver/package.json" ] ||
		! [ -f "$S3_TESTS_DIR/node_modules/@smithy/signature-v4/package.json" ]; then
		echo "s3: installing the test npm packages (npm ci --prefix tests)" >&2
		npm ci --prefix "$S3_TESTS_DIR" --no-audit --no-fund >&2 || {
			echo "s3: npm ci failed" >&2
			return 1
		}
	fi
	S3_DIR="$tmp/s3"
	mkdir -p "$S3_DIR/data"
	S3_BUCKET="polaimg-test"
	S3_REGION="eu-central-1"
	S3_ACCESS_KEY_ID="AKIA$(s3_rand 16 ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789)"
	S3_SECRET_ACCESS_KEY="$(s3_rand 36 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789)/+$(s3_rand 2 abcdefghij)"
	out="$S3_DIR/front.out"
	: >"$out"
	S3_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" S3_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY" \
		node --openssl-legacy-provider "$S3_START_SH_DIR/front.mjs" --dir "$S3_DIR/data" --bucket "$S3_BUCKET" \
		--region "$S3_REGION" >"$out" 2>"$S3_DIR/front.log" &
	S3_PID=$!
	S3_PORT=""
	for i in $(seq 1 100); do
		S3_PORT="$(sed -n 's/^{"port":\([0-9]*\),.*/\1/p' "$out")"
		[ -n "$S3_PORT" ] && break
		kill -0 "$S3_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$S3_PORT" ]; then
		echo "s3: the front did not start; its log:" >&2
		cat "$S3_DIR/front.log" >&2
		s3_stop
		return 1
	fi
	S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
	# The bucket is created by s3rver at start (configureBuckets); make sure
	# the front answers and refuses an unsigned request as S3 would.
	if [ "$(curl -s -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$S3_BUCKET")" != 403 ]; then
		echo "s3: the front at $S3_ENDPOINT does not answer as expected" >&2
		s3_stop
		return 1
	fi
	S3_CONF_LINES="storage_provider = s3
storage_bucket = $S3_BUCKET
storage_region = $S3_REGION
storage_endpoint = $S3_ENDPOINT
storage_access_key_id = $S3_ACCESS_KEY_ID
storage_secret_access_key = $S3_SECRET_ACCESS_KEY
storage_force_path_style = true"
	export S3_PORT S3_PID S3_ENDPOINT S3_BUCKET S3_REGION S3_ACCESS_KEY_ID \
		S3_SECRET_ACCESS_KEY S3_DIR S3_CONF_LINES
	echo "s3: verifying front on $S3_ENDPOINT (pid $S3_PID), bucket $S3_BUCKET, region $S3_REGION"
}

s3_stop() {
	local i
	if [ -n "${S3_PID:-}" ] && kill -0 "$S3_PID" 2>/dev/null; then
		kill -TERM "$S3_PID" 2>/dev/null
		for i in $(seq 1 50); do
			kill -0 "$S3_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$S3_PID" 2>/dev/null
		wait "$S3_PID" 2>/dev/null
	fi
	S3_PID=""
	return 0
}
