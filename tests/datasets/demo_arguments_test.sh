#!/usr/bin/env bash
# scripts/demo's --dataset argument, checked before it installs or builds
# anything: an unknown data set stops it with exit code 2 and a message
# naming the flag; --help lists both data sets.
# Usage: demo_arguments_test.sh REPO
set -uo pipefail
demo="$1/scripts/demo"
fail() { echo "FAIL: $*" >&2; exit 1; }

err=$("$demo" --dataset bogus 2>&1 >/dev/null); rc=$?
[[ $rc -eq 2 ]] || fail "--dataset bogus exited $rc, want 2"
grep -q "dataset must be fashion-mnist or emoji, not 'bogus'" <<<"$err" ||
  fail "--dataset bogus said: $err"

help=$("$demo" --help) || fail "--help exited $?"
grep -q -- "--dataset D  fashion-mnist (default) or emoji" <<<"$help" ||
  fail "--help does not list --dataset: $help"
echo "ok"
