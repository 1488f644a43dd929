"""Published schemas faultd's output is checked against, which are other
projects' files and so are not in this repository:

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
  package ships it, so it is not installed.

They are looked for, in order, in $FAULTD_EXT_SCHEMAS, build/npm/ (the npm
package), tests/ext-schemas/, a shared/schemas/ folder beside the repository,
and /work/shared/schemas/. A missing one fails the test that needs it, saying
where to put it."""
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


def ext_schema(name):
    env = os.environ.get("FAULTD_EXT_SCHEMAS")
    paths = list(dict.fromkeys(str(p) for p in (
        env and pathlib.Path(env) / name, FROM_NPM.get(name),
        REPO / "tests" / "ext-schemas" / name, REPO.parent / "shared" / "schemas" / name,
        pathlib.Path("/work/shared/schemas") / name) if p))
    for p in paths:
        if pathlib.Path(p).is_file():
            return pathlib.Path(p)
    how = " or run `make ext-schemas`" if name in FROM_NPM else ""
    raise AssertionError(f"{name} not found at {paths}: copy it from "
                         f"{SOURCES[name]} to one of them{how}")


def xsd_valid(xml_path, xsd="junit-10.xsd"):
    """xmllint (libxml2-utils) validates @xml_path against @xsd."""
    res = subprocess.run(["xmllint", "--noout", "--schema", str(ext_schema(xsd)),
                          str(xml_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{xml_path} is not valid against {xsd}:\n{res.stderr}"
