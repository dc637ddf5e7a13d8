#!/usr/bin/env bash
# pytest on one test tree. pytest exits 5 when it collects nothing: that is an error here,
# not a pass, unless the tree holds no test files at all (then say so and succeed).
set -uo pipefail
tree=$1; shift
if ! find "$tree" -name 'test_*.py' -print -quit 2>/dev/null | grep -q .; then
  echo "pytest: no test files under $tree"
  exit 0
fi
pytest "$tree" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest: $tree has test files but no test was collected" >&2
  exit 1
fi
exit "$rc"
