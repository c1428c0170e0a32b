"""Fetching the npm packages of FHIR definitions that the generators read.

A package is fetched with `npm pack` into a temporary directory and never committed;
the generated files are, so builds and tests need no network.
"""

import os
import subprocess
import sys
import tarfile


def fail(msg):
    sys.exit(f"{os.path.basename(sys.argv[0])}: {msg}")


def fetch(tmp, package, version):
    """`npm pack` package@version into a directory of its own under `tmp`, unpacks it
    there and returns the path of its `package` directory."""
    where = os.path.join(tmp, package.replace("/", "+"))
    os.makedirs(where)
    subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=where, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = [f for f in os.listdir(where) if f.endswith(".tgz")]
    if len(tgz) != 1:
        fail(f"npm pack left {tgz} in {where}")
    with tarfile.open(os.path.join(where, tgz[0])) as t:
        t.extractall(where, filter="data")
    return os.path.join(where, "package")
