#!/usr/bin/python3
"""Writes the image's license notices and its SPDX 2.3 SBOM for one static build.

    image-sbom.py --build-dir DIR --binary FILE --httplib-header FILE [--base-image REF]... OUT_DIR

OUT_DIR receives licenses/<component>/copyright (Debian's copyright file of the package that
supplied the component), licenses/cacerts-agent/LICENSE, and cacerts-agent.spdx.json. The
components are found from what the build used, not from a list of names: the libraries and
CMake package files recorded in DIR/CMakeCache.txt and the compiler's own libc.a and
libstdc++.a, each traced to its Debian package with `dpkg -S`, its version read with
`dpkg-query`, and checked against the version its header declares. cpp-httplib is compiled
from the single header of Debian's source package (Debian ships no static library), so its
package is libcpp-httplib-dev, whose version the header must match. Any mismatch or
unknown owner fails the build rather than writing an SBOM that describes something else.
Python 3 standard library only (the image's build stage has nothing more).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

AGENT = "cacerts-agent"
SBOM_NAME = AGENT + ".spdx.json"

# What the static binary embeds: name, how the build located it, SPDX license of the code
# linked, and the header that declares its version (path suffix, regexes of the numbers).
# "cache:VAR" is a file or CMake package directory named in CMakeCache.txt, "compiler:FILE"
# a file the compiler links by default, "package:NAME" a package named directly.
COMPONENTS = [
    ("openssl", "cache:OPENSSL_SSL_LIBRARY", "Apache-2.0",
     "openssl/opensslv.h", [r'define\s+OPENSSL_VERSION_STR\s+"([\d.]+)"']),
    ("fmt", "cache:fmt_DIR", "MIT",
     "fmt/core.h", [r"define\s+FMT_VERSION\s+(\d+)"]),
    ("spdlog", "cache:spdlog_DIR", "MIT",
     "spdlog/version.h", [r"define\s+SPDLOG_VER_MAJOR\s+(\d+)", r"define\s+SPDLOG_VER_MINOR\s+(\d+)",
                          r"define\s+SPDLOG_VER_PATCH\s+(\d+)"]),
    ("cli11", "cache:CLI11_DIR", "BSD-3-Clause",
     "CLI/Version.hpp", [r'define\s+CLI11_VERSION\s+"([\d.]+)"']),
    ("cpp-httplib", "package:libcpp-httplib-dev", "MIT",
     None, [r'define\s+CPPHTTPLIB_VERSION\s+"([\d.]+)"']),
    ("nlohmann-json", "cache:nlohmann_json_DIR", "MIT",
     "nlohmann/detail/abi_macros.hpp",
     [r"define\s+NLOHMANN_JSON_VERSION_MAJOR\s+(\d+)", r"define\s+NLOHMANN_JSON_VERSION_MINOR\s+(\d+)",
      r"define\s+NLOHMANN_JSON_VERSION_PATCH\s+(\d+)"]),
    ("glibc", "compiler:libc.a", "LGPL-2.1-or-later", None, None),
    ("libstdc++", "compiler:libstdc++.a", "GPL-3.0-or-later WITH GCC-exception-3.1", None, None),
]
# The tools that made the binary, recorded as build tools (package versions of the build).
BUILD_TOOLS = [("compiler", "cache:CMAKE_CXX_COMPILER"), ("linker", "cache:CACERTS_LLD"),
               ("cmake", "cache:CMAKE_COMMAND"), ("ninja", "cache:CMAKE_MAKE_PROGRAM")]


def fail(message):
    sys.exit(f"image-sbom.py: {message}")


def output(argv):
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        fail(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def read_cache(build_dir):
    """CMakeCache.txt's entries, plus the C++ compiler CMake detected (a toolchain file's
    compiler is recorded only in CMakeFiles/<version>/CMakeCXXCompiler.cmake)."""
    cache = {}
    with open(os.path.join(build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
        for line in f:
            match = re.match(r"^([A-Za-z_][\w-]*):[A-Z]+=(.*)$", line.rstrip("\n"))
            if match:
                cache[match.group(1)] = match.group(2)
    files = os.path.join(build_dir, "CMakeFiles")
    for version in sorted(os.listdir(files)):
        path = os.path.join(files, version, "CMakeCXXCompiler.cmake")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                match = re.search(r'^set\(CMAKE_CXX_COMPILER "([^"]+)"\)', f.read(), re.M)
            if match:
                cache["CMAKE_CXX_COMPILER"] = match.group(1)
    return cache


def owner(path):
    """The installed package (with :arch where dpkg gives one) that owns path."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        configs = [n for n in sorted(os.listdir(real)) if re.search(r"(-config|Config)\.cmake$", n)]
        if not configs:
            fail(f"no CMake package file in {real}")
        real = os.path.join(real, configs[0])
    candidates = [real]
    # merged /usr: dpkg may know the file under /lib rather than /usr/lib, or the reverse
    if real.startswith("/usr/"):
        candidates.append(real[len("/usr"):])
    for candidate in candidates:
        result = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            packages = result.stdout.split(": ", 1)[0].split(", ")
            if len(packages) != 1:
                fail(f"{candidate} belongs to several packages: {packages}")
            return packages[0]
    fail(f"no installed package owns {real}")


def locate(how, cache, compiler):
    kind, _, what = how.partition(":")
    if kind == "package":
        return what
    if kind == "cache":
        value = cache.get(what)
        if not value or value.endswith("-NOTFOUND"):
            fail(f"CMakeCache.txt has no {what}")
        return owner(value)
    return owner(output([compiler, f"-print-file-name={what}"]).strip())


def package_field(package, field):
    value = output(["dpkg-query", "-W", "-f=${" + field + "}", package])
    if not value:
        fail(f"dpkg-query: {package} has no {field}")
    return value


def upstream(version):
    """3.0.22-1~deb12u2 -> 3.0.22; 1:1.10.0+ds-0.4 -> 1.10.0; 9.1.0+ds1-2 -> 9.1.0"""
    version = version.split(":", 1)[-1].rsplit("-", 1)[0]
    return re.split(r"[+~]", version)[0]


def header_version(text, patterns):
    numbers = []
    for pattern in patterns:
        match = re.search(pattern, text)
        if not match:
            return None
        numbers.append(match.group(1))
    if len(numbers) == 1 and numbers[0].isdigit() and len(numbers[0]) >= 5:
        n = int(numbers[0])  # fmt: major * 10000 + minor * 100 + patch
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
    return ".".join(numbers)


def check_header(name, package, version, suffix, patterns, httplib_header):
    if patterns is None:
        return
    if suffix is None:
        path = httplib_header
    else:
        files = [f for f in output(["dpkg-query", "-L", package]).splitlines() if f.endswith("/" + suffix)]
        if len(files) != 1:
            fail(f"{package} has {len(files)} files ending in {suffix}")
        path = files[0]
    with open(path, encoding="utf-8", errors="replace") as f:
        declared = header_version(f.read(), patterns)
    if declared != upstream(version):
        fail(f"{name}: {path} declares {declared}, but {package} is {version}")


def spdx_id(name):
    return "SPDXRef-Package-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def deb_package(name, package, purpose, license_id=None):
    plain, _, arch = package.partition(":")
    version = package_field(package, "Version")
    arch = arch or package_field(package, "Architecture")
    source = package_field(package, "source:Package")
    entry = {
        "name": name,
        "SPDXID": spdx_id(name),
        "versionInfo": version,
        "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "sourceInfo": f"Debian package {plain} ({arch}), source package {source}",
        "primaryPackagePurpose": purpose,
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": f"pkg:deb/debian/{plain}@{version}?arch={arch}&distro=debian-12",
        }],
    }
    if license_id:
        entry["licenseConcluded"] = entry["licenseDeclared"] = license_id
        entry["comment"] = f"Statically linked; notice at licenses/{name}/copyright."
    else:
        entry["licenseConcluded"] = entry["licenseDeclared"] = "NOASSERTION"
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--binary", required=True, help="the stripped binary the image ships")
    parser.add_argument("--httplib-header", required=True)
    parser.add_argument("--base-image", action="append", default=[],
                        help="a base image reference of the image build, recorded as given")
    parser.add_argument("out_dir")
    args = parser.parse_args()

    cache = read_cache(args.build_dir)
    compiler = cache.get("CMAKE_CXX_COMPILER")
    if not compiler:
        fail("CMakeCache.txt names no C++ compiler")
    source_dir = cache.get("cacerts_agent_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = cache.get("CMAKE_PROJECT_VERSION")
    if not version:
        fail("CMakeCache.txt has no CMAKE_PROJECT_VERSION")
    with open(args.binary, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    arch = output(["dpkg", "--print-architecture"]).strip()
    target = cache.get("CACERTS_CROSS_TRIPLET") or arch

    licenses = os.path.join(args.out_dir, "licenses")
    shutil.rmtree(licenses, ignore_errors=True)
    os.makedirs(os.path.join(licenses, AGENT))
    shutil.copyfile(os.path.join(source_dir, "LICENSE"), os.path.join(licenses, AGENT, "LICENSE"))

    agent = {
        "name": AGENT,
        "SPDXID": spdx_id(AGENT),
        "versionInfo": version,
        "supplier": "Organization: cacerts-agent",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest}],
        "primaryPackagePurpose": "APPLICATION",
        "licenseConcluded": "Apache-2.0",
        "licenseDeclared": "Apache-2.0",
        "copyrightText": "NOASSERTION",
        "comment": f"The static /cacerts-agent for {target}; license at licenses/{AGENT}/LICENSE.",
    }
    packages = [agent]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": agent["SPDXID"]}]
    for name, how, license_id, suffix, patterns in COMPONENTS:
        package = locate(how, cache, compiler)
        entry = deb_package(name, package, "LIBRARY", license_id)
        check_header(name, package, entry["versionInfo"], suffix, patterns, args.httplib_header)
        notice = os.path.join("/usr/share/doc", package.partition(":")[0], "copyright")
        if not os.path.isfile(notice) or os.path.getsize(notice) == 0:
            fail(f"{package} has no copyright file at {notice}")
        os.makedirs(os.path.join(licenses, name))
        shutil.copyfile(notice, os.path.join(licenses, name, "copyright"))
        packages.append(entry)
        relationships.append({"spdxElementId": agent["SPDXID"], "relationshipType": "STATIC_LINK",
                              "relatedSpdxElement": entry["SPDXID"]})
    for name, how in BUILD_TOOLS:
        entry = deb_package(name, locate(how, cache, compiler), "APPLICATION")
        packages.append(entry)
        relationships.append({"spdxElementId": entry["SPDXID"], "relationshipType": "BUILD_TOOL_OF",
                              "relatedSpdxElement": agent["SPDXID"]})

    # SOURCE_DATE_EPOCH makes the document reproducible; the namespace is unique per binary.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    created = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch \
        else datetime.datetime.now(datetime.timezone.utc)
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{AGENT}-{version}-{target}",
        "documentNamespace": f"https://spdx.org/spdxdocs/{AGENT}-{version}-{target}-{digest}",
        "creationInfo": {
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": ["Tool: cacerts-agent-image-sbom", "Organization: cacerts-agent"],
            "comment": "Built on Debian " + _debian_version() + " (" + arch + "); base images: "
                       + (", ".join(args.base_image) or "not given"),
        },
        "packages": packages,
        "relationships": relationships,
    }
    with open(os.path.join(args.out_dir, SBOM_NAME), "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write("\n")


def _debian_version():
    try:
        with open("/etc/debian_version", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "(unknown)"


if __name__ == "__main__":
    main()
