"""Published schemas faultd's output is checked against, which are other
projects' files and so are not in this repository:

- junit-10.xsd: the JUnit XSD Jenkins' xUnit plugin validates with,
  jenkinsci/xunit-plugin (MIT, Copyright (c) 2014 Gregory Boissinot),
  src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd
  (copy of commit 8c515de2804b3fd591a3b0f1ff8908a1b1a41887).
- sarif-schema-2.1.0.json: the SARIF 2.1.0 JSON Schema (OASIS, errata 01),
  oasis-tcs/sarif-spec, sarif-2.1/schema/sarif-schema-2.1.0.json (copy of
  commit e0583813964ec43cea53b6b531b402866095ed1f).

They are looked for, in order, in $FAULTD_EXT_SCHEMAS, tests/ext-schemas/,
a shared/schemas/ folder beside the repository, and /work/shared/schemas/.
A missing one fails the test that needs it, saying where to put it."""
import os
import pathlib
import subprocess

from conftest import REPO

SOURCES = {
    "junit-10.xsd": "jenkinsci/xunit-plugin src/main/resources/org/jenkinsci/plugins/"
                    "xunit/types/model/xsd/junit-10.xsd",
    "sarif-schema-2.1.0.json": "oasis-tcs/sarif-spec sarif-2.1/schema/sarif-schema-2.1.0.json",
}


def ext_schema(name):
    dirs = list(dict.fromkeys(str(d) for d in (
        os.environ.get("FAULTD_EXT_SCHEMAS"), REPO / "tests" / "ext-schemas",
        REPO.parent / "shared" / "schemas", "/work/shared/schemas") if d))
    for d in dirs:
        if (pathlib.Path(d) / name).is_file():
            return pathlib.Path(d) / name
    raise AssertionError(f"{name} not found in {dirs}: copy it from "
                         f"{SOURCES[name]} into one of them")


def xsd_valid(xml_path, xsd="junit-10.xsd"):
    """xmllint (libxml2-utils) validates @xml_path against @xsd."""
    res = subprocess.run(["xmllint", "--noout", "--schema", str(ext_schema(xsd)),
                          str(xml_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{xml_path} is not valid against {xsd}:\n{res.stderr}"
