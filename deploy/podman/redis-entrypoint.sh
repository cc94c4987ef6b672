#!/bin/sh
# The official Redis image is built with protected mode off by default (the container network
# is the boundary), so `redis-server --appendonly yes` answers the other containers. Debian's
# binary keeps it on: turn it off here, before the caller's options (a later
# `--protected-mode yes` still wins). A config file, if given, must stay the first argument.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in
    "" | -*) set -- redis-server --protected-mode no "$@" ;;
    *) conf="$1"; shift; set -- redis-server "$conf" --protected-mode no "$@" ;;
  esac
fi
exec "$@"
