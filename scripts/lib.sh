# Shared set-up for scripts/demo, scripts/test and friends. Source it; do not run it.
#
# - installs what is missing (PostgreSQL 15, libpq-dev) with apt-get when root;
# - unless DATABASE_URL is given, runs a throwaway PostgreSQL under .tipline/ (git-ignored),
#   listening on 127.0.0.1 and a unix socket only, on port $TIPLINE_PG_PORT (default 55432, or
#   100 higher when that is taken);
# - makes a reporter key under .tipline/ unless TIPLINE_REPORTER_KEY is set.
set -euo pipefail

TIPLINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TIPLINE_STATE="$TIPLINE_ROOT/.tipline"
# A port given in TIPLINE_PG_PORT is kept; the default moves 100 higher when taken (start_pg_node),
# and a running server's own port is followed (follow_running_pg).
TIPLINE_PG_PORT_GIVEN=${TIPLINE_PG_PORT:-}
TIPLINE_PG_PORT=${TIPLINE_PG_PORT:-55432}
# A second throwaway cluster (scripts/profile's) has a name of its own and extra server options.
TIPLINE_PG_NAME=${TIPLINE_PG_NAME:-pg}
TIPLINE_PG_OPTIONS=${TIPLINE_PG_OPTIONS:-}
# Where the locks of scripts sharing that cluster live (NAME.users.lock, NAME.start.lock: lock_hold).
TIPLINE_PG_LOCKS="$TIPLINE_STATE/$TIPLINE_PG_NAME"
# Answers -h/--help with the calling script's header comment (its lines after the shebang up to
# the first line that is not a comment), and refuses any other argument when the script takes
# none ("$1" = none). Runs before anything is installed, started or built.
script_usage() {
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
}
answer_help() {
    local takes=$1 word
    shift
    for word in "$@"; do
        case $word in -h|--help) script_usage; exit 0 ;; esac
    done
    if [ "$takes" = none ] && [ $# -gt 0 ]; then
        echo "${0##*/}: takes no arguments (got: $*); --help says what it does" >&2
        exit 2
    fi
}

# Checks a Python-backed script's arguments before anything is installed, started or built: the
# Python half runs with TIPLINE_CHECK_ARGS=1, parses and checks its arguments and stops. --help
# prints its help and ends the script; a bad argument ends it with the parser's message. Where
# python3 is not installed yet, the check waits for the real run (which checks them the same way).
check_script_args() {
    local script=$1 out
    shift
    command -v python3 >/dev/null 2>&1 || return 0
    out=$(TIPLINE_CHECK_ARGS=1 TIPLINE_ROOT="$TIPLINE_ROOT" python3 "$script" "$@") || exit $?
    if [ -n "$out" ]; then
        printf '%s\n' "$out"
        exit 0
    fi
}

# The cluster's directory: .tipline/NAME, or the private /tmp directory it links to (pg_cluster_dir).
set_pg_paths() {
    PG_DIR=$1
    PGDATA_DIR="$PG_DIR/data"
    PG_SOCKET_DIR="$PG_DIR/run"
    PG_LOG="$PG_DIR/server.log"
}
if [ -L "$TIPLINE_STATE/$TIPLINE_PG_NAME" ]; then
    set_pg_paths "$(readlink "$TIPLINE_STATE/$TIPLINE_PG_NAME")"
else
    set_pg_paths "$TIPLINE_STATE/$TIPLINE_PG_NAME"
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Prints the directory for throwaway cluster $1 and makes it, owned by the server's user. It is
# .tipline/$1, unless root runs this from a directory the postgres user cannot enter (under
# /root, or a 0700 home): then it is a fresh private directory under /tmp (mktemp, so no other
# user can have put a link there first), which .tipline/$1 links to and later runs reuse.
# Call after ensure_packages.
pg_cluster_dir() {
    local name=$1 link="$TIPLINE_STATE/$1" target dir
    mkdir -p "$TIPLINE_STATE"
    if [ "$(id -u)" -ne 0 ]; then
        mkdir -p "$link"
        echo "$link"
        return
    fi
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    # The server user must be able to reach the data directory through the project's folders.
    chmod o+x "$TIPLINE_STATE" "$TIPLINE_ROOT" 2>/dev/null || true
    if [ ! -L "$link" ] && runuser -u postgres -- test -x "$TIPLINE_STATE" 2>/dev/null; then
        mkdir -p "$link"
        chown postgres "$link"
        echo "$link"
        return
    fi
    if [ -L "$link" ]; then
        target=$(readlink "$link")
        if [ -d "$target" ] && [ ! -L "$target" ] && [ "$(stat -c %U "$target")" = postgres ]; then
            echo "$target"
            return
        fi
        rm -f "$link"
    elif [ -e "$link" ]; then
        # A real folder from a run that could reach it (or an older version of this script): kept
        # aside, since the link must take its name.
        mv "$link" "$link.unreachable-$(date +%s)"
    fi
    dir=$(mktemp -d "/tmp/tipline-$name-XXXXXXXX")
    chown postgres "$dir"
    ln -sfn "$dir" "$link"
    echo "$dir"
}

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
    done
    return 1
}

# Installs what the scripts use and a fresh Debian image may lack. Words: `client` (the PostgreSQL
# server itself is not needed: scripts/demo with a DATABASE_URL), `time` (/usr/bin/time, which
# the benchmarks time processes with).
ensure_packages() {
    local missing=() word client=0 timing=0
    for word in "$@"; do
        case $word in client) client=1 ;; time) timing=1 ;; esac
    done
    [ "$client" = 1 ] || pg_bindir >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
    [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    # The demo reads the status's JSON; the fault-injection runs and benchmarks are Python.
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ "$timing" = 0 ] || [ -x /usr/bin/time ] || missing+=(time)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "missing packages: ${missing[*]} (run as root, or install them: apt-get install -y ${missing[*]})" >&2
            exit 1
        fi
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Runs a PostgreSQL server binary as a non-root user: PostgreSQL refuses to run as root.
as_pg_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        # From /: the caller's directory may be one the postgres user cannot enter.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

pg_ctl_cmd() {
    as_pg_owner "$(pg_bindir)/pg_ctl" -D "$PGDATA_DIR" "$@"
}

# Waits (up to 60 s) until no socket but one in TIME_WAIT holds local port $1. Our ports lie in
# Linux's ephemeral range (32768-60999), so a client connection to another server (the tests' many
# connections, say) can hold one for a while, and a server binding it then fails ("Address already
# in use"). A listening server on the port is left alone at once: starting on it fails with its own
# message (and the connections it accepted, which show the port as theirs, are not waited for).
wait_port_free() {
    local hex state waited=0
    hex=$(printf '%04X' "$1")
    while [ "$waited" -lt 60 ]; do
        state=$(awk -v p=":$hex" '
            FNR > 1 && substr($2, length($2) - 4) == p { if ($4 == "0A") listening = 1; else if ($4 != "06" && held == "") held = $4 }
            END { if (!listening) print held }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
        [ -z "$state" ] && return 0
        [ "$waited" -eq 0 ] && say "port $1 is held by a client connection; waiting for it to close"
        sleep 1
        waited=$((waited + 1))
    done
}

# Starts the server of data directory $1 (log $2) on port $3 with further server options $4, and
# leaves the port it got in PG_NODE_PORT. $5 is the port as the user gave it, if they did: then it
# is kept. Otherwise, when the port is taken ("Address already in use": our ports lie in the
# ephemeral range, see wait_port_free), it tries the port 100 higher, five ports in all. On failure
# it prints the server log's lines of this attempt, which say why, and returns 1.
start_pg_node() {
    local data=$1 log=$2 port=$3 opts=${4:-} tries=5 try seen said
    [ -z "${5:-}" ] || tries=1
    for ((try = 1; try <= tries; try++)); do
        wait_port_free "$port"
        seen=0
        [ ! -f "$log" ] || seen=$(wc -l < "$log")
        # The server outlives this script (the last script using it stops it): it gets none of
        # the files this script has open (a caller's `flock` on the machine, pipes), only 0-2.
        if said=$(close_inherited_fds; as_pg_owner "$(pg_bindir)/pg_ctl" -D "$data" -w -t 120 -l "$log" -o "-p $port $opts" start 2>&1 >/dev/null); then
            PG_NODE_PORT=$port
            return 0
        fi
        if [ "$try" -lt "$tries" ] && tail -n "+$((seen + 1))" "$log" 2>/dev/null | grep -q "Address already in use"; then
            say "port $port is taken; trying port $((port + 100))"
            port=$((port + 100))
            continue
        fi
        break
    done
    echo "PostgreSQL in $data did not start on port $port (${said//$'\n'/ }). Its log ($log) says:" >&2
    tail -n "+$((seen + 1))" "$log" 2>/dev/null | tail -n 25 | sed 's/^/    /' >&2
    return 1
}

# Closes every file descriptor of this (sub)shell above 2.
close_inherited_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    return 0
}

# $1 quoted for the shell that pg_ctl runs the server through (its -o options are pasted into a
# `sh -c` command line): a path with a space stays one word.
sh_quote() {
    printf "'%s'" "${1//\'/\'\\\'\'}"
}

# The directory for the server's Unix socket: $1, or nothing (TCP only; every script connects to
# 127.0.0.1) when a socket there would be too long a path (a Unix socket's path holds at most 107
# bytes, and PostgreSQL refuses to start with a longer one: a checkout deep in a CI workspace).
pg_socket_dir() {
    local LC_ALL=C  # the length in bytes
    if [ $((${#1} + 15)) -le 107 ]; then  # 15: /.s.PGSQL.NNNNN
        echo "$1"
    else
        say "the socket path under $1 would be too long for a Unix socket; the server listens on TCP only"
    fi
}

pg_running() {
    [ -f "$PGDATA_DIR/postmaster.pid" ] && pg_ctl_cmd status >/dev/null 2>&1
}

# True when the throwaway server runs; then TIPLINE_PG_PORT is the port it listens on (the fourth
# line of postmaster.pid), which is not the default when the default was taken at its start.
follow_running_pg() {
    pg_running || return 1
    TIPLINE_PG_PORT=$(sed -n 4p "$PGDATA_DIR/postmaster.pid")
    export TIPLINE_PG_PORT
}

# Locks between scripts that share a throwaway cluster, in .tipline/: NAME.users.lock (shared by
# every script using the server while it runs; the last to finish takes it exclusively and stops
# the server, if a script started it: NAME.started-by-script), NAME.start.lock (one start at a
# time). Each lock is held by a holder process of its own (flock running `tail --pid`), never by
# the script: a postmaster the script starts inherits the script's open files, and a lock it
# inherited would outlive the script. A holder ends when released or when its script ends (tail's
# output goes to /dev/null: `tail -f` ends as soon as the reader of an output pipe is gone).
# lock_hold -s|-x FILE: returns once the lock is held; LOCK_HOLDER is "FLOCK_PID TAIL_PID".
lock_hold() {
    local mode=$1 file=$2 fd line
    # setsid: a session of its own, so that a signal to the script's process group (Ctrl-C, a
    # timeout) does not end the holder while the script's cleanup still uses the server.
    exec {fd}< <(exec setsid -w flock "$mode" "$file" sh -c 'echo "$$"; exec tail --pid="$1" -f /dev/null >/dev/null' sh "$$" </dev/null 2>/dev/null)
    local holder=$!
    if ! read -r -u "$fd" line; then
        exec {fd}<&-
        echo "could not lock $file" >&2
        exit 1
    fi
    exec {fd}<&-
    LOCK_HOLDER="$holder $line"
}

# Ends a holder (lock_hold's LOCK_HOLDER) and returns once its lock is let go.
lock_release() {
    local flock_pid=$1 tail_pid=$2 i
    # KILL: a script started with SIGTERM ignored passes the ignoring on to the holder.
    kill -KILL "$tail_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$flock_pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$flock_pid" 2>/dev/null || true
}

# Starts the throwaway server unless it runs. `use` (the scripts): this script uses it until
# stop_started_pg, and the last script using it stops it if a script started it. `keep`
# (scripts/db start): it runs until scripts/db stop, whichever scripts use it meanwhile.
start_local_pg() {
    local purpose=${1:-use} bindir starter
    bindir=$(pg_bindir)
    mkdir -p "$TIPLINE_STATE"
    local locks=$TIPLINE_PG_LOCKS
    # First the use, then the start: a script stopping the server holds the users' lock
    # exclusively, so this waits until that stop is over and then starts it again. `keep` holds
    # it only while it starts.
    lock_hold -s "$locks.users.lock"
    local use=$LOCK_HOLDER
    [ "$purpose" = use ] && TIPLINE_PG_USE=$use
    lock_hold -x "$locks.start.lock"
    starter=$LOCK_HOLDER
    set_pg_paths "$(pg_cluster_dir "$TIPLINE_PG_NAME")"
    if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
        say "creating a throwaway PostgreSQL cluster in $PG_DIR"
        as_pg_owner "$bindir/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    fi
    as_pg_owner mkdir -p "$PG_SOCKET_DIR"
    if ! follow_running_pg; then
        say "starting PostgreSQL on 127.0.0.1:$TIPLINE_PG_PORT"
        # autovacuum_naptime=10s: tables here grow from empty within seconds (tests, benchmarks), and
        # the hot jobs table must be vacuumed as it churns (the default is 60 s). Not 1 s: the
        # worker's plans no longer depend on statistics (index paths, generic plans), and an ANALYZE
        # every second or two of each young table invalidated every session's cached plans, which
        # then had to be planned again: with 1 s, the latency p99 at 50 reports/s was about 1 ms
        # higher (BENCHMARKS.md).
        # shared_buffers: a quarter of the memory, at most 1 GB (initdb's default is 128 MB).
        # max_connections=1000: the test suite starts its tests at once, each with a database, a pool,
        # workers and servers of its own: 280 client sessions at its peak, and a run at 300 failed
        # with "too many clients" (a slot costs a few hundred kB of shared memory).
        local mem_mb buffers_mb
        mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo 2>/dev/null || echo 512)
        buffers_mb=$((mem_mb / 4)); [ "$buffers_mb" -gt 1024 ] && buffers_mb=1024; [ "$buffers_mb" -lt 128 ] && buffers_mb=128
        start_pg_node "$PGDATA_DIR" "$PG_LOG" "$TIPLINE_PG_PORT" "-c unix_socket_directories=$(sh_quote "$(pg_socket_dir "$PG_SOCKET_DIR")") -c listen_addresses=127.0.0.1 -c max_connections=1000 -c fsync=on -c autovacuum_naptime=10s -c shared_buffers=${buffers_mb}MB $TIPLINE_PG_OPTIONS" \
            "$TIPLINE_PG_PORT_GIVEN" || { lock_release $starter; return 1; }
        TIPLINE_PG_PORT=$PG_NODE_PORT
        export TIPLINE_PG_PORT
        [ "$purpose" = use ] && : > "$locks.started-by-script"
    fi
    [ "$purpose" = use ] || rm -f "$locks.started-by-script"
    lock_release $starter
    [ "$purpose" = use ] || lock_release $use
}

# The end of this script's use of the throwaway server: the last script using it stops it, if a
# script started it (not scripts/db start). TIPLINE_PG_STOPPED=1 when this one stopped it.
stop_started_pg() {
    [ -n "${TIPLINE_PG_USE:-}" ] || return 0
    lock_release $TIPLINE_PG_USE
    TIPLINE_PG_USE=
    local locks=$TIPLINE_PG_LOCKS fd
    exec {fd}>>"$locks.users.lock"
    if flock -x -n "$fd"; then
        if [ -f "$locks.started-by-script" ]; then
            stop_local_pg
            rm -f "$locks.started-by-script"
            TIPLINE_PG_STOPPED=1
        fi
    elif [ -f "$locks.started-by-script" ]; then
        say "the throwaway PostgreSQL keeps running: another script uses it (the last one stops it)"
    fi
    exec {fd}>&-
    return 0
}

stop_local_pg() {
    if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
        say "stopping the throwaway PostgreSQL"
        pg_ctl_cmd -w -m fast stop >/dev/null 2>&1 || true
    fi
}

# Sets TIPLINE_ADMIN_URL (the server) and defines db_url NAME (a database on it). Words: `client-ok`
# (with a DATABASE_URL this script needs no server of its own installed: scripts/demo), `time`
# (as for ensure_packages).
setup_database_server() {
    local words=() word
    for word in "$@"; do
        case $word in client-ok) [ -z "${DATABASE_URL:-}" ] || words+=(client) ;; time) words+=(time) ;; esac
    done
    ensure_packages "${words[@]}"
    if [ -n "${DATABASE_URL:-}" ]; then
        TIPLINE_OWN_PG=0
        TIPLINE_ADMIN_URL=$DATABASE_URL
    else
        TIPLINE_OWN_PG=1
        start_local_pg
        TIPLINE_ADMIN_URL="postgresql://postgres@127.0.0.1:$TIPLINE_PG_PORT/postgres"
    fi
    export TIPLINE_OWN_PG TIPLINE_ADMIN_URL
}

db_url() {
    echo "postgresql://postgres@127.0.0.1:$TIPLINE_PG_PORT/$1"
}

# Drops and creates database $1 on the throwaway server.
fresh_database() {
    psql -q -X -v ON_ERROR_STOP=1 "$TIPLINE_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\"" >/dev/null
}

ensure_reporter_key() {
    if [ -z "${TIPLINE_REPORTER_KEY:-}" ]; then
        mkdir -p "$TIPLINE_STATE"
        if [ ! -s "$TIPLINE_STATE/reporter-key" ]; then
            (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TIPLINE_STATE/reporter-key")
        fi
        TIPLINE_REPORTER_KEY=$(cat "$TIPLINE_STATE/reporter-key")
    fi
    export TIPLINE_REPORTER_KEY
}

build_tipline() {
    say "building tipline"
    mkdir -p "$TIPLINE_STATE"
    # A failed build stops here: an older binary left from before must not run in its place.
    (cd "$TIPLINE_ROOT" && swift build --product tipline > "$TIPLINE_STATE/build-tipline.log" 2>&1) || {
        { grep -E "error" "$TIPLINE_STATE/build-tipline.log" | head -30 >&2; } || true
        echo "build failed (the whole log: $TIPLINE_STATE/build-tipline.log)" >&2
        exit 1
    }
    TIPLINE_BIN="$(cd "$TIPLINE_ROOT" && swift build --show-bin-path)/tipline"
    [ -x "$TIPLINE_BIN" ] || { echo "build failed: $TIPLINE_BIN missing" >&2; exit 1; }
    export TIPLINE_BIN
}
