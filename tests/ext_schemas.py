"""Schemas faultd's output is checked against.

faultd's own, in this repository:

- tests/schemas/junit-faultd.xsd: the JUnit dialect faultd writes (report
  and soak), our description of it; xsd_valid() always checks against it.

Published ones, which are other projects' files and so are not in this
repository:

- sarif-schema-2.1.0.json: the SARIF 2.1.0 JSON Schema. `make test` installs
  it (scripts/ext-schemas.sh) into build/npm/ from the npm package
  @microsoft/jest-sarif 1.0.0-beta.0 (MIT, microsoft/sarif-js-sdk),
  lib/schemas/sarif-2.1.0-rtm.5.json: SARIF 2.1.0 as its rtm.5 schema has it,
  which predates errata 01. The errata 01 schema (OASIS; oasis-tcs/sarif-spec
  sarif-2.1/schema/sarif-schema-2.1.0.json, commit
  e0583813964ec43cea53b6b531b402866095ed1f) is stricter in a few places (a
  region needs one of startLine, charOffset, byteOffset; a language tag's
  pattern); no package ships it, and a copy of it under this name in
  $FAULTD_EXT_SCHEMAS is used instead.
- junit-10.xsd: the JUnit XSD Jenkins' xUnit plugin validates with,
  jenkinsci/xunit-plugin (MIT, Copyright (c) 2014 Gregory Boissinot),
  src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd
  (copy of commit 8c515de2804b3fd591a3b0f1ff8908a1b1a41887). No npm or Debian
  package ships it, so it is optional: when found, xsd_valid() checks
  against it too, after junit-faultd.xsd.

They are looked for, in order, in $FAULTD_EXT_SCHEMAS, build/npm/ (the npm
package), tests/ext-schemas/, a shared/schemas/ folder beside the repository,
and /work/shared/schemas/. A missing SARIF schema fails the test that needs
it, saying where to put it."""
import os
import pathlib
import subprocess

from conftest import REPO

SOURCES = {
    "junit-10.xsd": "jenkinsci/xunit-plugin src/main/resources/org/jenkinsci/plugins/"
                    "xunit/types/model/xsd/junit-10.xsd",
    "sarif-schema-2.1.0.json": "oasis-tcs/sarif-spec sarif-2.1/schema/sarif-schema-2.1.0.json",
}
# name: its path under the npm prefix scripts/ext-schemas.sh installs into.
NPM = REPO / "build" / "npm" / "node_modules"
FROM_NPM = {
    "sarif-schema-2.1.0.json": NPM / "@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json",
}
# faultd's own description of its JUnit, always checked.
JUNIT_XSD = REPO / "tests" / "schemas" / "junit-faultd.xsd"


def ext_schema_paths(name):
    """Where @name is looked for, in order."""
    env = os.environ.get("FAULTD_EXT_SCHEMAS")
    return list(dict.fromkeys(pathlib.Path(p) for p in (
        env and pathlib.Path(env) / name, FROM_NPM.get(name),
        REPO / "tests" / "ext-schemas" / name, REPO.parent / "shared" / "schemas" / name,
        pathlib.Path("/work/shared/schemas") / name) if p))


def find_ext_schema(name):
    """The first copy of @name found, or None."""
    return next((p for p in ext_schema_paths(name) if p.is_file()), None)


def ext_schema(name):
    """@name's path; a missing one fails the test, saying where to put it."""
    found = find_ext_schema(name)
    how = " or run `make ext-schemas`" if name in FROM_NPM else ""
    if not found:
        raise AssertionError(f"{name} not found at {[str(p) for p in ext_schema_paths(name)]}: "
                             f"copy it from {SOURCES[name]} to one of them{how}")
    return found


def xsd_errors(xml_path, xsd):
    """xmllint's complaints about @xml_path against the XSD @xsd, or None
    if it is valid."""
    res = subprocess.run(["xmllint", "--noout", "--schema", str(xsd), str(xml_path)],
                         capture_output=True, text=True, timeout=60)
    return None if res.returncode == 0 else res.stderr or f"xmllint exited {res.returncode}"


def xsd_valid(xml_path):
    """@xml_path is valid JUnit: against faultd's junit-faultd.xsd, and also
    against Jenkins' junit-10.xsd when a copy is found (never instead)."""
    for xsd in (JUNIT_XSD, find_ext_schema("junit-10.xsd")):
        if xsd:
            err = xsd_errors(xml_path, xsd)
            assert err is None, f"{xml_path} is not valid against {xsd}:\n{err}"
