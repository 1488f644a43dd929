#!/bin/sh
# Install, from the npm registry, the published schemas the tests check
# faultd's output against (tests/ext_schemas.py says which file comes from
# which package). They are other projects' files, so they are not in this
# repository. Pinned versions; nothing is done when they are present already.
# Idempotent; quiet on the fast path. PREFIX defaults to build/npm.
set -eu

PREFIX=${1:-build/npm}
# package@version  file inside it
PKGS="@microsoft/jest-sarif@1.0.0-beta.0 lib/schemas/sarif-2.1.0-rtm.5.json"

need=""
# shellcheck disable=SC2086
set -- $PKGS
while [ $# -ge 2 ]; do
	name=${1%@*}
	[ -f "$PREFIX/node_modules/$name/$2" ] || need="$need $1"
	shift 2
done
[ -z "$need" ] && exit 0

if ! command -v npm >/dev/null 2>&1; then
	echo "ext-schemas: npm is missing (\`make deps\` as root installs it)" >&2
	exit 1
fi
echo "ext-schemas: npm install$need into $PREFIX"
mkdir -p "$PREFIX"
# shellcheck disable=SC2086
npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
	--prefix "$PREFIX" $need
