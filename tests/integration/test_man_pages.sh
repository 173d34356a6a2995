#!/usr/bin/env bash
# The man pages of provd, provctl and prov-agent against the programs themselves. Each page must
# render without a single groff warning. Every command, subcommand and long option that the
# program's --help (and the --help of each of its commands) prints must be documented in the
# page, as the tag of a .TP item or in a .SS heading, not merely mentioned in passing; and every
# long option a tag documents must be one the program still prints. The temporary files of
# prov-agent's state directory are named in its page and documents as libprov makes them.
#
# Usage: test_man_pages.sh BIN_DIR MAN_DIR
set -euo pipefail

BIN=${1:?usage: $0 BIN_DIR MAN_DIR}
MAN=${2:?usage: $0 BIN_DIR MAN_DIR}

command -v groff >/dev/null ||
    { echo "FAIL: groff not found (scripts/deps.sh --test installs groff-base)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Problems are counted in a file, since some are found in subshells.
checks=0
: >"$TMP/problems"
problem() {
    echo "FAIL: $*" | tee -a "$TMP/problems" >&2
}

# help_of PROGRAM ARGS...: the text of PROGRAM ARGS --help, appended to $TMP/help and printed.
help_of() {
    local prog=$1 out
    shift
    out=$("$BIN/$prog" "$@" --help 2>&1) || { problem "$prog $* --help failed: $out"; return 0; }
    printf '%s\n' "$out" | tee -a "$TMP/help"
}

# render PAGE: groff must stay silent, on the default device and on terminals of two widths.
render() {
    local page=$1 dev
    for dev in "" "-Tutf8" "-Tutf8 -rLL=100n"; do
        # shellcheck disable=SC2086 # dev holds several words on purpose
        groff -man -ww -z $dev "$page" >/dev/null 2>"$TMP/warn" ||
            problem "$(basename "$page"): groff -man -ww -z $dev failed"
        if [ -s "$TMP/warn" ]; then
            problem "$(basename "$page"): groff -man -ww -z $dev warns:"
            sed 's/^/    /' "$TMP/warn" >&2
        fi
        checks=$((checks + 1))
    done
}

# terms PAGE: what the page documents, one item a line: the tag of every .TP and the text of
# every .SS, with escapes, font changes and macro quoting removed.
terms() {
    awk 'tag { print; tag = 0; next } /^\.TP/ { tag = 1 } /^\.SS / { print }' "$1" |
        sed -E -e 's/^\.[A-Z]+ ?//' -e 's/\\f(\[[^]]*\]|\(..|.)//g' -e 's/\\-/-/g' \
            -e 's/\\\(dq/"/g' -e 's/\\[:&%]//g' -e 's/\\e/\\/g' -e 's/"//g'
}

# check PROGRAM PAGE COMMAND...: the page documents each command and every long option of
# $TMP/help; its tags document no long option missing from $TMP/help.
check() {
    local prog=$1 page=$MAN/$2 cmd opt
    shift 2
    [ -f "$page" ] || { problem "$page is missing"; return 0; }
    render "$page"
    terms "$page" >"$TMP/terms"
    [ -s "$TMP/terms" ] || problem "$(basename "$page"): no .TP or .SS items found"
    grep -oE -- '--[a-z][a-z0-9-]*' "$TMP/help" | sort -u >"$TMP/help-opts"
    grep -oE -- '--[a-z][a-z0-9-]*' "$TMP/terms" | sort -u >"$TMP/page-opts"
    for cmd in "$@"; do
        grep -qE "(^|[^a-z0-9-])$cmd([^a-z0-9-]|\$)" "$TMP/terms" ||
            problem "$(basename "$page") does not document the command \"$prog $cmd\""
        checks=$((checks + 1))
    done
    while read -r opt; do
        grep -qx -- "$opt" "$TMP/page-opts" ||
            problem "$(basename "$page") does not document $opt (printed by $prog --help)"
        checks=$((checks + 1))
    done <"$TMP/help-opts"
    while read -r opt; do
        grep -qx -- "$opt" "$TMP/help-opts" ||
            problem "$(basename "$page") documents $opt, which no $prog --help prints"
        checks=$((checks + 1))
    done <"$TMP/page-opts"
}

# first_words SECTION: the first word of each line indented by two spaces in the section of the
# help text on stdin that starts with the line SECTION and ends at a blank line.
first_words() {
    awk -v s="$1" '$0 == s { on = 1; next } /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' |
        awk '!seen[$0]++'
}

# The lower bounds on the number of commands found guard against help texts this script no
# longer parses, which would otherwise leave nothing to check.

# ---- provd: its commands ("commands:" of provd --help), their subcommands (the "usage: provd
# COMMAND SUBCOMMAND" lines of the command's help), and the options of each. ----
: >"$TMP/help"
cmds=()
for c in $(help_of provd | first_words "commands:"); do
    cmds+=("$c")
    for s in $(help_of provd "$c" | sed -nE "s/^usage: provd $c ([a-z][a-z-]*).*/\1/p" | sort -u)
    do
        cmds+=("$c $s")
        help_of provd "$c" "$s" >/dev/null
    done
done
[ ${#cmds[@]} -ge 4 ] || problem "provd --help lists ${#cmds[@]} commands: ${cmds[*]}"
check provd provd.8 "${cmds[@]}"

# ---- provctl: its commands ("Commands:" of provctl --help); a command whose help lists
# subcommands is a group, and each of them is a command. ----
: >"$TMP/help"
cmds=()
for w in $(help_of provctl | first_words "Commands:"); do
    out=$(help_of provctl "$w")
    if printf '%s\n' "$out" | grep -q "^Usage: provctl $w SUBCOMMAND"; then
        for s in $(printf '%s\n' "$out" | sed -nE "s/^  $w ([a-z][a-z-]*).*/\1/p"); do
            cmds+=("$w $s")
            help_of provctl "$w" "$s" >/dev/null
        done
    else
        cmds+=("$w")
    fi
done
[ ${#cmds[@]} -ge 30 ] || problem "provctl --help lists ${#cmds[@]} commands: ${cmds[*]}"
check provctl provctl.1 "${cmds[@]}"

# ---- prov-agent: options only. ----
: >"$TMP/help"
help_of prov-agent >/dev/null
check prov-agent prov-agent.1

# ---- The temporary files of a state directory, which prov-agent removes at start: named in its
# page and in the documents as libprov makes them (lib/state.c: "." NAME TEMP_MARK "XXXXXX"). ----
SRC=$MAN/../..
mark=$(sed -nE 's/^#define TEMP_MARK "([^"]*)".*/\1/p' "$SRC/lib/state.c")
[ -n "$mark" ] || problem "lib/state.c: no TEMP_MARK found"
want=".NAME${mark}XXXXXX"
for doc in "$MAN/prov-agent.1" "$SRC/docs/prov-agent.md" "$SRC/docs/libprov.md"; do
    names=$(sed 's/\\-/-/g' "$doc" | grep -oE '\.NAME\.[A-Za-z.-]*X{6}' | sort -u || true)
    [ -n "$names" ] || problem "$(basename "$doc") does not name the temporary files ($want)"
    for n in $names; do
        [ "$n" = "$want" ] ||
            problem "$(basename "$doc") names the temporary files $n; libprov makes $want"
    done
    checks=$((checks + 1))
done

errors=$(wc -l <"$TMP/problems")
if [ "$errors" -ne 0 ]; then
    echo "man pages: $errors problem(s) in $checks checks" >&2
    exit 1
fi
echo "man pages: $checks checks passed"
