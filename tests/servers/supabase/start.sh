# tests/servers/supabase/start.sh — start and stop the Supabase Storage
# stand-in (server.mjs) for a test run. Source this file, then:
#
#     supabase_start <tmpdir> [api]
#     ... tests ...
#     supabase_stop
#
# supabase_start installs jose (npm ci, once), starts the stand-in on a free
# port of 127.0.0.1 with a fresh JWT secret and service key, creates a
# private bucket, and exports
#
#   SUPA_PORT, SUPA_PID, SUPA_URL (http://127.0.0.1:<port>),
#   SUPA_BUCKET, SUPA_JWT_SECRET, SUPA_SERVICE_KEY,
#   SUPA_STORAGE_DIR  the directory holding the bucket's objects (<key> = path),
#   SUPA_LOG          the stand-in's log file,
#   SUPA_CONF_LINES   the polaimg.conf lines for it: storage_provider,
#                     storage_bucket, supabase_url, supabase_service_key and,
#                     unless "api" was given, supabase_jwt_secret (with "api"
#                     polaimg asks the Storage API's sign endpoints for URLs).
#
# Faults for outage tests: curl -X POST "$SUPA_URL/__fault" -d '{"mode":"down"}'
# (modes ok, down, error, slow with "ms", cut; "count": N limits it to N requests).
# Returns non-zero (with a message on stderr) if anything fails.

supabase_start() {
	local tmp="$1" mode="${2:-jwt}" here i
	here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
	[ -n "$tmp" ] && [ -d "$tmp" ] || { echo "supabase_start: no such directory: $tmp" >&2; return 1; }
	if [ ! -f "$here/node_modules/jose/package.json" ]; then
		(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
			{ echo "supabase_start: npm ci failed in $here" >&2; return 1; }
	fi
	mkdir -p "$tmp/supabase/data" || return 1
	SUPA_BUCKET=polaimg-test
	SUPA_JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)"
	SUPA_SERVICE_KEY="$(SUPA_JWT_SECRET="$SUPA_JWT_SECRET" node "$here/server.mjs" --make-service-key)" ||
		{ echo "supabase_start: cannot make a service key" >&2; return 1; }
	SUPA_LOG="$tmp/supabase/server.log"
	rm -f "$tmp/supabase/port"
	SUPA_JWT_SECRET="$SUPA_JWT_SECRET" SUPA_SERVICE_KEY="$SUPA_SERVICE_KEY" \
		node "$here/server.mjs" --data "$tmp/supabase/data" --port-file "$tmp/supabase/port" \
		>"$SUPA_LOG" 2>&1 &
	SUPA_PID=$!
	for i in $(seq 1 100); do
		[ -s "$tmp/supabase/port" ] && break
		kill -0 "$SUPA_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! [ -s "$tmp/supabase/port" ] || ! kill -0 "$SUPA_PID" 2>/dev/null; then
		echo "supabase_start: the stand-in did not come up:" >&2
		cat "$SUPA_LOG" >&2
		supabase_stop
		return 1
	fi
	SUPA_PORT="$(cat "$tmp/supabase/port")"
	SUPA_URL="http://127.0.0.1:$SUPA_PORT"
	SUPA_STORAGE_DIR="$tmp/supabase/data/$SUPA_BUCKET"
	if ! SUPA_URL="$SUPA_URL" SUPA_SERVICE_KEY="$SUPA_SERVICE_KEY" SUPA_BUCKET="$SUPA_BUCKET" node --input-type=module -e '
		const r = await fetch(process.env.SUPA_URL + "/storage/v1/bucket", {
			method: "POST",
			headers: { Authorization: "Bearer " + process.env.SUPA_SERVICE_KEY,
				apikey: process.env.SUPA_SERVICE_KEY, "Content-Type": "application/json" },
			body: JSON.stringify({ id: process.env.SUPA_BUCKET, name: process.env.SUPA_BUCKET, public: false }),
		});
		if (r.status !== 200) { console.error(r.status, await r.text()); process.exit(1); }
	'; then
		echo "supabase_start: cannot create the bucket" >&2
		supabase_stop
		return 1
	fi
	SUPA_CONF_LINES="storage_provider = supabase
storage_bucket = $SUPA_BUCKET
supabase_url = $SUPA_URL
supabase_service_key = $SUPA_SERVICE_KEY"
	if [ "$mode" != api ]; then
		SUPA_CONF_LINES="$SUPA_CONF_LINES
supabase_jwt_secret = $SUPA_JWT_SECRET"
	fi
	export SUPA_PORT SUPA_PID SUPA_URL SUPA_BUCKET SUPA_JWT_SECRET SUPA_SERVICE_KEY \
		SUPA_STORAGE_DIR SUPA_LOG SUPA_CONF_LINES
	return 0
}

supabase_stop() {
	local i
	if [ -n "${SUPA_PID:-}" ] && kill -0 "$SUPA_PID" 2>/dev/null; then
		kill -TERM "$SUPA_PID" 2>/dev/null
		for i in $(seq 1 30); do kill -0 "$SUPA_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SUPA_PID" 2>/dev/null
		wait "$SUPA_PID" 2>/dev/null
	fi
	SUPA_PID=""
	return 0
}
