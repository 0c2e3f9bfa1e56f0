#!/usr/bin/env bash
# Kaldi-style option parsing. Source it after defining the defaults:
#
#   stage=1          # first stage to run
#   nj=4
#   . utils/parse_options.sh
#
# Every variable defined before it becomes an option: `--stage 3`, `--stage=3`, `--train-set x`
# (dashes map to underscores). An option naming no defined variable is an error; a variable whose
# default is true/false only takes true/false. `--help` (or -h) prints the script's `help_message`
# if set, then every option with its default and the comment on its line, read from the script
# itself. Parsing stops at the first argument that is not an option (or after `--`); the
# remaining positional arguments are left in "$@".
# (Own implementation of the interface of Kaldi's utils/parse_options.sh.)

__po_script=${BASH_SOURCE[1]:-$0}

__po_help() {
  [ -n "${help_message:-}" ] && printf '%s\n\n' "$help_message"
  echo "Options (default in brackets):"
  # top-level assignments that precede the line sourcing this file
  awk '/^[[:space:]]*\.[[:space:]].*parse_options\.sh/ { exit }
       /^[A-Za-z_][A-Za-z0-9_]*=/ {
         name = $0; sub(/=.*/, "", name)
         if (name == "help_message") next
         rest = substr($0, length(name) + 2)
         comment = ""; c = index(rest, " #")
         if (c > 0) { comment = substr(rest, c + 2); sub(/^[[:space:]]+/, "", comment) }
         opt = name; gsub(/_/, "-", opt)
         printf "  --%-24s %s\n", opt, comment
       }' "$__po_script" |
  while IFS= read -r line; do
    name=${line#  --}; name=${name%% *}; var=${name//-/_}
    printf '%s [%s]\n' "$line" "${!var-}"
  done
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      __po_help
      exit 0 ;;
    --)
      shift
      break ;;
    --*=*)
      __po_name=${1%%=*}; __po_value=${1#*=}; shift ;;
    --*)
      __po_name=$1
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value (see --help)" >&2
        exit 1
      fi
      __po_value=$2; shift 2 ;;
    *)
      break ;;
  esac
  __po_var=${__po_name#--}
  __po_var=${__po_var//-/_}
  if ! [[ $__po_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!__po_var+set}" ]; then
    echo "$0: unknown option $__po_name (see --help for the options)" >&2
    exit 1
  fi
  __po_old=${!__po_var}
  if { [ "$__po_old" = true ] || [ "$__po_old" = false ]; } &&
     [ "$__po_value" != true ] && [ "$__po_value" != false ]; then
    echo "$0: option $__po_name takes true or false, got '$__po_value'" >&2
    exit 1
  fi
  printf -v "$__po_var" '%s' "$__po_value"
done
unset __po_name __po_value __po_var __po_old __po_script
true
