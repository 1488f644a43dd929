#!/bin/sh
# faultd's version, for the build: `git describe` of a release tag (v1.2.3 ->
# 1.2.3, with -N-gHASH past it and -dirty for local changes); in a checkout
# with no release tag yet, VERSION-gHASH(-dirty); outside git (a tarball, a
# Debian source package), the VERSION file alone.
cd "$(dirname "$0")/.." || exit 1
base=$(cat VERSION 2>/dev/null || echo 0)
if v=$(git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null); then
	echo "${v#v}"
elif h=$(git describe --always --dirty --abbrev=7 2>/dev/null); then
	echo "$base-g$h"
else
	echo "$base"
fi
