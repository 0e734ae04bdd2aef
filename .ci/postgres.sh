#!/bin/sh
# A throwaway PostgreSQL server for the database tests (used by .ci/run).
#
#   .ci/postgres.sh start [DIR]   install PostgreSQL (Debian package) if it is missing,
#                                 create a cluster in DIR (default: a new temp dir), start
#                                 it on 127.0.0.1 and a unix socket in DIR, on a free port,
#                                 create the database hstcal_test and print its SQLAlchemy
#                                 URL on stdout (everything else goes to stderr)
#   .ci/postgres.sh stop DIR      stop that server and remove DIR
#
# Then: HSTCAL_TEST_POSTGRES=<url> python -m pytest   (tests/conftest.py: database_url)
# The cluster trusts every local connection: never use it for anything but tests.
set -eu

MARK=.hstcal-test-postgres   # marks a directory this script created (stop removes only those)

say() { echo "postgres.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

bindir() {
    # the newest installed server version
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Run a command as the cluster's owner: initdb and postgres refuse to run as root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            # su needs one command string; the arguments here never contain quotes
            su postgres -s /bin/sh -c "$*"
        fi
    else
        "$@"
    fi
}

install_server() {
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and installing it needs root"
    say "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >&2 || die "apt-get install postgresql failed"
}

start() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        install_server
    fi
    bin=$(bindir)
    [ -x "$bin/initdb" ] || die "no initdb under /usr/lib/postgresql/*/bin"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' system user to own the cluster"
    fi

    dir=${1:-}
    if [ -z "$dir" ]; then
        dir=$(mktemp -d /tmp/hstcal-pg.XXXXXX)
        say "cluster in $dir (stop it with: .ci/postgres.sh stop $dir)"
    fi
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    dir=$(cd "$dir" && pwd)
    touch "$dir/$MARK"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$dir"
    fi
    chmod 700 "$dir"
    cd "$dir"   # the owner must be able to stand in its working directory

    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
        --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # Only loopback and the socket in $dir; a disposable server needs no durability.
    cat >>"$dir/data/postgresql.conf" <<EOF

# .ci/postgres.sh: throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

    # First free port from 54329 on: a port taken by someone else makes the server exit
    # at once ("could not bind"), and we try the next one.
    port=54329
    last=$((port + 50))
    while :; do
        rm -f "$dir/server.log"
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-p $port" start >/dev/null 2>&1; then
            break
        fi
        if [ "$port" -ge "$last" ] || ! grep -qE "could not bind|could not create any TCP" \
                "$dir/server.log" 2>/dev/null; then
            cat "$dir/server.log" >&2 2>/dev/null || true
            die "the server did not start (log above)"
        fi
        port=$((port + 1))
    done
    echo "$port" >"$dir/port"

    as_owner "$bin/createdb" -h "$dir" -p "$port" -U postgres hstcal_test >&2 \
        || die "createdb hstcal_test failed"
    say "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') running on 127.0.0.1:$port"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/hstcal_test"
}

stop() {
    dir=${1:-}
    [ -n "$dir" ] || die "usage: $0 stop DIR"
    [ -d "$dir" ] || return 0
    if [ -z "$(ls -A "$dir")" ]; then   # start failed before making anything
        rmdir "$dir"
        return 0
    fi
    [ -f "$dir/$MARK" ] || die "$dir was not made by $0; not touching it"
    cd /
    if [ -f "$dir/data/postmaster.pid" ]; then
        bin=$(bindir)
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 \
            || say "pg_ctl stop failed (log: $dir/server.log)"
    fi
    rm -rf "$dir"
}

cmd=${1:-start}
[ $# -gt 0 ] && shift
case "$cmd" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    *) die "usage: $0 start [DIR] | stop DIR" ;;
esac
