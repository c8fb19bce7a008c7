#!/usr/bin/env bash
# bench/peer-postgres.sh: PostgreSQL's own two-phase commit, measured with pgbench,
# beside kv2pc's `cross-2` workload, in one run on the same machine.
#
# What it measures
#   PostgreSQL: each pgbench transaction updates two rows (one in each half of a
#   2,000-row table, like kv2pc's cross-2 writing one key on each of 2 nodes, always in
#   the same order so there are no deadlocks), then `PREPARE TRANSACTION
#   'kv2pc_<client>-<n>'` and `COMMIT PREPARED` of the same name: two WAL flushes per
#   commit, as in a real 2PC participant. Names are collision-free: the client id plus
#   a per-client counter (pgbench variables persist across a client's transactions).
#   kv2pc: `kv2pc bench --workload cross-2 --commit classic,parallel --json` for the
#   same client counts. It prints tps and average latency for PostgreSQL, kv2pc's
#   commits/s and p50 in each commit mode, the ratios kv2pc/PostgreSQL, and the fsync
#   p50 kv2pc's bench measured (its "limits").
#   Single process vs. one server, 3 kv2pc nodes' logs vs. one WAL: read it as a
#   peer reference, not a like-for-like race.
#
# How to run (from anywhere; NOT run in CI)
#   bench/peer-postgres.sh
#   CLIENTS="1 16 64" DURATION=5 bench/peer-postgres.sh
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/peer-postgres.sh   # existing server
#
# What it needs
#   bash, cargo, pgbench and psql, and either
#   - an existing PostgreSQL server given by PGHOST (set it to use one), with
#     max_prepared_transactions >= the largest client count and fsync on (the
#     default); the script creates and drops the table kv2pc_peer_accounts there; or
#   - initdb and pg_ctl (on PATH or in /usr/lib/postgresql/*/bin; Debian:
#     `apt-get install postgresql`): the script starts a throwaway cluster in a temp
#     directory (unix socket only, no TCP), with max_prepared_transactions=300 and
#     fsync on, and stops and removes it at exit. As root it runs it as `postgres`.
#
# Environment: CLIENTS (default "1 16 64"), DURATION seconds per run (default 5),
# THREADS (pgbench -j cap, default: the core count), KV2PC_BIN (an already built
# kv2pc binary; default: `cargo build --release` and target/release/kv2pc).

set -euo pipefail

CLIENTS=${CLIENTS:-"1 16 64"}
DURATION=${DURATION:-5}
CORES=$(nproc 2>/dev/null || echo 2)
THREADS=${THREADS:-$CORES}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kv2pc-peer-pg.XXXXXX")
chmod 755 "$WORK"
OWN_CLUSTER=""
AS_PG=()

die() { echo "peer-postgres: $*" >&2; exit 1; }

cleanup() {
    if [[ -n $OWN_CLUSTER ]]; then
        "${AS_PG[@]}" "$PG_CTL" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v cargo >/dev/null || die "cargo not found"
command -v pgbench >/dev/null || die "pgbench not found (Debian: apt-get install postgresql-client)"
command -v psql >/dev/null || die "psql not found (Debian: apt-get install postgresql-client)"

find_pg_bin() {
    local name=$1 dir
    if command -v "$name" >/dev/null; then command -v "$name"; return; fi
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/$name ]] && { echo "$dir/$name"; return; }
    done
    return 1
}

if [[ -n ${PGHOST:-} ]]; then
    echo "# using the existing server PGHOST=$PGHOST PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-$USER}"
else
    INITDB=$(find_pg_bin initdb) && PG_CTL=$(find_pg_bin pg_ctl) ||
        die "no server: set PGHOST/PGPORT/PGUSER to a PostgreSQL server with max_prepared_transactions > 0, or install initdb/pg_ctl (apt-get install postgresql)"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the throwaway server"
        AS_PG=(runuser -u postgres --)
        chown postgres "$WORK"
    fi
    "${AS_PG[@]}" "$INITDB" -D "$WORK/data" -U postgres -A trust --no-sync >"$WORK/initdb.log" 2>&1 ||
        { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    OWN_CLUSTER=1
    "${AS_PG[@]}" "$PG_CTL" -D "$WORK/data" -l "$WORK/data/server.log" -w start \
        -o "-c listen_addresses='' -c unix_socket_directories='$WORK' -p 54329 \
            -c max_prepared_transactions=300 -c max_connections=320 -c fsync=on" >/dev/null ||
        { cat "$WORK/data/server.log" >&2; die "pg_ctl start failed"; }
    export PGHOST=$WORK PGPORT=54329 PGUSER=postgres PGDATABASE=postgres
    echo "# throwaway PostgreSQL cluster in $WORK (unix socket, port 54329)"
fi

SQL() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
MAXPREP=$(SQL -c "SHOW max_prepared_transactions")
FSYNC=$(SQL -c "SHOW fsync")
echo "# $(SQL -c 'SELECT version()' | cut -d, -f1); max_prepared_transactions=$MAXPREP fsync=$FSYNC synchronous_commit=$(SQL -c 'SHOW synchronous_commit')"
((MAXPREP > 0)) || die "max_prepared_transactions is 0: PREPARE TRANSACTION is disabled on this server"
[[ $FSYNC == on ]] || echo "# warning: fsync is off, PostgreSQL's figures do not include durable commits" >&2

SQL <<'EOF'
SET client_min_messages = warning;
DROP TABLE IF EXISTS kv2pc_peer_accounts;
CREATE TABLE kv2pc_peer_accounts (aid int PRIMARY KEY, balance bigint NOT NULL) WITH (fillfactor = 50);
INSERT INTO kv2pc_peer_accounts SELECT g, 0 FROM generate_series(1, 2000) g;
VACUUM ANALYZE kv2pc_peer_accounts;
EOF

# One account in each half, lower one first: never a deadlock. `:n` is a per-client
# counter (started by -D n=0), so every prepared name is unique within a run.
cat >"$WORK/2pc.sql" <<'EOF'
\set n :n + 1
\set a random(1, 1000)
\set b random(1001, 2000)
BEGIN;
UPDATE kv2pc_peer_accounts SET balance = balance + 1 WHERE aid = :a;
UPDATE kv2pc_peer_accounts SET balance = balance - 1 WHERE aid = :b;
PREPARE TRANSACTION 'kv2pc_:client_id-:n';
COMMIT PREPARED 'kv2pc_:client_id-:n';
EOF

declare -A PG_TPS PG_LAT
for c in $CLIENTS; do
    ((c <= MAXPREP)) || echo "# warning: $c clients > max_prepared_transactions=$MAXPREP" >&2
    j=$((c < THREADS ? c : THREADS))
    out=$(pgbench -n -M simple -f "$WORK/2pc.sql" -D n=0 -c "$c" -j "$j" -T "$DURATION" 2>&1) ||
        { echo "$out" >&2; die "pgbench failed at $c clients"; }
    PG_TPS[$c]=$(awk '/^tps = /{printf "%.0f", $3}' <<<"$out")
    PG_LAT[$c]=$(awk '/^latency average = /{printf "%.0f", $4 * 1000}' <<<"$out")
    failed=$(awk '/^number of failed transactions/{print $5}' <<<"$out")
    [[ ${failed:-0} == 0 ]] || echo "# warning: $failed failed pgbench transactions at $c clients" >&2
done
# Anything left prepared (a client killed between PREPARE and COMMIT PREPARED) would
# hold its locks forever on an existing server.
for gid in $(SQL -c "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'kv2pc\_%'"); do
    SQL -c "ROLLBACK PREPARED '$gid'"
done
SQL -c "DROP TABLE kv2pc_peer_accounts"

csv=$(tr -s ' ' ',' <<<"$CLIENTS" | sed 's/^,//; s/,$//')
# KV2PC_BIN=path skips the build (cargo waits silently while another build holds its lock).
if [[ -z ${KV2PC_BIN:-} ]]; then
    (cd "$HERE" && cargo build --release -q) || die "cargo build failed"
    KV2PC_BIN=$HERE/target/release/kv2pc
fi
"$KV2PC_BIN" bench --workload cross-2 --clients "$csv" --millis "$((DURATION * 1000))" \
    --commit classic,parallel --json >"$WORK/kv2pc.json" || die "kv2pc bench failed"

# Pull figures out of kv2pc's JSON without jq: one run object per "workload" line group,
# keyed by commit mode and client count.
KV=$(awk '
    /"fsync_p50_us"/ { gsub(/[",]/, ""); fsync = $2 }
    /"fsync_preallocated_p50_us"/ { gsub(/[",]/, ""); pre = $2 }
    /"commit"/ { gsub(/[",]/, ""); m = $2 }
    /"clients"/ { gsub(/[",]/, ""); c = $2 }
    /"per_second"/ { gsub(/[",]/, ""); ps[m " " c] = $2 }
    /"p50_us"/ && !/fsync/ { gsub(/[",]/, ""); p50[m " " c] = $2 }
    END { printf "fsync %s %s\n", fsync, pre; for (k in ps) printf "%s %s %s\n", k, ps[k], p50[k] }
' "$WORK/kv2pc.json")

echo
echo "PostgreSQL 2PC (pgbench, PREPARE TRANSACTION + COMMIT PREPARED, 2 rows) vs kv2pc cross-2"
echo "${DURATION}s per run, $CORES cores, pgbench -j up to $THREADS; kv2pc in both commit modes"
printf '%-8s %8s %10s %10s %10s %10s %10s %8s %8s\n' clients pg_tps pg_lat_us \
    classic_cps classic_p50 parallel_cps parallel_p50 classic/pg parallel/pg
for c in $CLIENTS; do
    read -r _ _ cps cp50 < <(awk -v c="$c" '$1 == "classic" && $2 == c' <<<"$KV")
    read -r _ _ pps pp50 < <(awk -v c="$c" '$1 == "parallel" && $2 == c' <<<"$KV")
    awk -v c="$c" -v t="${PG_TPS[$c]}" -v l="${PG_LAT[$c]}" -v k="${cps:-0}" -v p="${cp50:-0}" \
        -v q="${pps:-0}" -v r="${pp50:-0}" 'BEGIN {
            printf "%-8s %8d %10d %10.0f %10.0f %10.0f %10.0f %9.2fx %9.2fx\n", c, t, l, k, p, q, r,
                (t > 0 ? k / t : 0), (t > 0 ? q / t : 0) }'
done
read -r _ fs pre < <(grep '^fsync' <<<"$KV")
echo "kv2pc's measured limits: fsync p50 ${fs} us (growing file), ${pre} us (preallocated)"
