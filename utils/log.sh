#!/usr/bin/env bash
# Sourced by path.sh: `log message...` prints the time and the caller's file:line on stderr.
log() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2
}
