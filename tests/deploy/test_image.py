#!/usr/bin/python3
"""Image closure: the files the Dockerfile's final stage copies are all the agent needs.

Without a container engine: build the static binary, its license notices and its SBOM with the
Dockerfile's own build step, from a build context filtered by .dockerignore; put only the final
stage's files into an empty root; check those files; and run `cacerts-agent version`, `init`
against the local Vault test server, and `check` there, as uid/gid 1337 with /etc/cacerts on a
fresh tmpfs, like the istiod pod.

CACERTS_IMAGE_ARCH (a Debian architecture, default this machine's) selects the image platform:
another one is cross-compiled as the Dockerfile does for it and run under Debian's
qemu-user-static (scripts/install-deps.sh --cross ARCH installs both).
"""

import sys

sys.dont_write_bytecode = True

import filecmp  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

from deploy_support import (  # noqa: E402
    BUILD_DIR, COMPONENTS_DIR, DEPLOY_CACHE_DIR, SOURCE_DIR, env_map, pod_spec, read_agent_env,
    read_yaml_file, run, run_tests)

NATIVE_ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                             check=True).stdout.strip()
ARCH = os.environ.get("CACERTS_IMAGE_ARCH") or NATIVE_ARCH
# Debian architecture -> (Docker's TARGETARCH, GNU triplet, qemu-user program, ELF e_machine)
ARCHES = {
    "amd64": ("amd64", "x86_64-linux-gnu", "qemu-x86_64-static", 62),
    "arm64": ("arm64", "aarch64-linux-gnu", "qemu-aarch64-static", 183),
}
# One cache per architecture: the two tests may run at the same time.
IMAGE_CACHE = os.path.join(DEPLOY_CACHE_DIR, "image", ARCH)
CONTEXT_DIR = os.path.join(IMAGE_CACHE, "context")
HTTPLIB_DIR = os.path.join(DEPLOY_CACHE_DIR, "httplib")
# The Dockerfile's build stage paths that the test maps into IMAGE_CACHE.
BUILD_OUTPUTS = ("build-static", "image")
DOC_DIR = "usr/share/doc/cacerts-agent"
SBOM = DOC_DIR + "/cacerts-agent.spdx.json"
# The components statically linked into the binary, each with the Debian package that
# supplies it (":" is replaced by the target architecture), and its SPDX license.
LINKED = {
    "openssl": ("libssl-dev:", "Apache-2.0"),
    "fmt": ("libfmt-dev:", "MIT"),
    "spdlog": ("libspdlog-dev:", "MIT"),
    "cli11": ("libcli11-dev", "BSD-3-Clause"),
    "cpp-httplib": ("libcpp-httplib-dev", "MIT"),
    "nlohmann-json": ("nlohmann-json3-dev", "MIT"),
}
# The C and C++ runtimes are linked in too; their packages depend on the compiler used.
RUNTIMES = ("glibc", "libstdc++")
UID = GID = 1337
KV_FLAGS = [
    "--source", "kv",
    "--kv-cert", "vault:secret/data/istio/cacerts#ca-cert",
    "--kv-key", "vault:secret/data/istio/cacerts#ca-key",
    "--kv-chain", "vault:secret/data/istio/cacerts#cert-chain",
    "--kv-root", "vault:secret/data/istio/cacerts#root-cert",
]
# Where the pod mounts the agent's inputs (kustomize/components/agent-volumes).
ROOT_VAULT_CA = "/etc/cacerts-agent/vault-ca/ca.crt"
ROOT_JWT = "/var/run/secrets/vault/token"
# For the command line of the token-auth run only.
ROOT_VAULT_TOKEN = "/vault-token"
PUBLISHED = ("ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem")


# --- Dockerfile and .dockerignore, as far as this project uses them -----------------------

def parse_dockerfile(path):
    """([{'from': image, 'flags': [--flag=value], 'name': alias, 'steps': [(INSTRUCTION, text)]}],
    {global ARG: default}) with continuation lines joined and comments dropped."""
    stages = []
    global_args = {}
    logical = ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not logical and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            instruction, _, text = logical.strip().partition(" ")
            logical = ""
            instruction = instruction.upper()
            text = text.strip()
            if instruction == "FROM":
                words = text.split()
                flags = [w for w in words if w.startswith("--")]
                words = [w for w in words if not w.startswith("--")]
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append({"from": words[0], "flags": flags, "name": name, "steps": []})
            elif not stages:
                if instruction != "ARG":
                    raise AssertionError(f"{instruction} before the first FROM")
                key, _, default = text.partition("=")
                global_args[key] = default
            else:
                stages[-1]["steps"].append((instruction, text))
    return stages, global_args


def expand(text, variables):
    """Docker's $VAR and ${VAR} substitution, for the variables this Dockerfile uses."""
    def value(match):
        key = match.group(1) or match.group(2)
        if key not in variables:
            raise AssertionError(f"unknown build variable ${key} in {text!r}")
        return variables[key]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def dockerignore_patterns(path):
    patterns = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line[1:] if negate else line).lstrip("/")
            regex = ""
            i = 0
            while i < len(pattern):
                if pattern.startswith("**", i):
                    regex += ".*"
                    i += 2
                elif pattern[i] == "*":
                    regex += "[^/]*"
                    i += 1
                elif pattern[i] == "?":
                    regex += "[^/]"
                    i += 1
                else:
                    regex += re.escape(pattern[i])
                    i += 1
            patterns.append((re.compile(regex + r"\Z"), negate, pattern))
    return patterns


def in_context(relpath, patterns):
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    included = True
    for regex, negate, _ in patterns:
        if any(regex.match(c) for c in candidates):
            included = negate
    return included


def sync_build_context():
    """Makes CONTEXT_DIR hold exactly the files .dockerignore lets into the build context.
    Only files whose content changed are rewritten, so an unchanged tree does not rebuild."""
    patterns = dockerignore_patterns(os.path.join(SOURCE_DIR, ".dockerignore"))
    wanted = set()
    for root, dirs, files in os.walk(SOURCE_DIR):
        rel_root = os.path.relpath(root, SOURCE_DIR)
        # Skip excluded directories that no exception pattern reaches into.
        dirs[:] = [d for d in dirs if in_context(os.path.normpath(os.path.join(rel_root, d)), patterns)
                   or any(negate and text.startswith(os.path.normpath(os.path.join(rel_root, d)) + "/")
                          for _, negate, text in patterns)]
        for name in files:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if in_context(rel, patterns):
                wanted.add(rel)
    for root, _, files in os.walk(CONTEXT_DIR):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), CONTEXT_DIR)
            if rel not in wanted:
                os.remove(os.path.join(root, name))
    for rel in wanted:
        src, dst = os.path.join(SOURCE_DIR, rel), os.path.join(CONTEXT_DIR, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or not filecmp.cmp(src, dst, shallow=False):
            shutil.copyfile(src, dst)  # a fresh mtime, so that the build sees the change
            shutil.copymode(src, dst)
    return wanted


class Dockerfile:
    """The parts of the Dockerfile the closure test reproduces, for the target ARCH."""

    def __init__(self):
        self.stages, self.global_args = parse_dockerfile(os.path.join(SOURCE_DIR, "Dockerfile"))
        self.variables = {**self.global_args, "TARGETARCH": ARCHES[ARCH][0], "BUILDPLATFORM": f"linux/{NATIVE_ARCH}"}
        self.final = self.stages[-1]
        self.base = expand(self.final["from"], self.variables)
        names = [s["name"] for s in self.stages[:-1]]
        self.copies = []
        for instruction, text in self.final["steps"]:
            if instruction == "COPY":
                words = shlex.split(text)
                flags = [w for w in words if w.startswith("--")]
                args = [w for w in words if not w.startswith("--")]
                if len(flags) != 1 or not flags[0].startswith("--from=") or \
                        flags[0][len("--from="):] not in names or len(args) != 2:
                    raise AssertionError(f"unsupported final-stage COPY: {text}")
                self.copies.append((flags[0][len("--from="):], args[0], args[1]))
        self.build = next(s for s in self.stages if s["name"] == self.copies[0][0])
        workdirs = [t for i, t in self.build["steps"] if i == "WORKDIR"]
        self.workdir = workdirs[-1]

    def buildCommand(self):
        """The build stage's RUN that builds from the context, as an argv list with the image's
        paths mapped to local ones and the build arguments expanded."""
        runs = [t for i, t in self.build["steps"] if i == "RUN" and "scripts/build-image.sh" in t]
        if len(runs) != 1:
            raise AssertionError("expected one RUN with scripts/build-image.sh in the build stage")
        argv = [self.mapPath(w) for w in shlex.split(expand(runs[0], self.variables))]
        if argv[:2] != ["bash", "scripts/build-image.sh"] or any(w in ("&&", ";", "|") for w in argv):
            raise AssertionError(f"the build step must be build-image.sh alone: {runs[0]}")
        return argv

    def mapPath(self, path):
        if path == "/opt/httplib":
            return HTTPLIB_DIR
        rel = os.path.relpath(path, self.workdir) if path.startswith("/") else path
        if rel.split("/")[0] in BUILD_OUTPUTS:
            return os.path.join(IMAGE_CACHE, rel)
        return path

    def localSource(self, image_path):
        mapped = self.mapPath(image_path)
        if mapped == image_path:
            raise AssertionError(f"final stage copies {image_path}, which the test cannot map")
        return mapped


def elf_segments(path):
    """(e_machine, program header types) of a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise AssertionError(f"{path} is not a 64-bit little-endian ELF file")
        machine, = struct.unpack_from("<H", header, 0x12)
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        types = []
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            types.append(struct.unpack("<I", f.read(4))[0])
        return machine, types


def dpkg_version(package):
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                          check=True).stdout


def read_project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(\w+ VERSION ([0-9.]+)", f.read()).group(1)


def files_under(root):
    found = set()
    for top, _, files in os.walk(root):
        found.update(os.path.relpath(os.path.join(top, n), root) for n in files)
    return found


class ImageClosureTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if ARCH not in ARCHES:
            raise AssertionError(f"CACERTS_IMAGE_ARCH={ARCH}: the image is built for {sorted(ARCHES)}")
        _, triplet, emulator, _ = ARCHES[ARCH]
        cls.emulator = None
        if ARCH != NATIVE_ARCH:
            cls.emulator = shutil.which(emulator)
            missing = [t for t in (f"{triplet}-g++", emulator) if not shutil.which(t)]
            if missing:
                raise unittest.SkipTest(f"{', '.join(missing)} not installed: run scripts/install-deps.sh "
                                        f"--cross {ARCH} to build and run the {ARCH} image")
        cls.dockerfile = Dockerfile()
        os.makedirs(IMAGE_CACHE, exist_ok=True)
        fetch = run([os.path.join(SOURCE_DIR, "tests", "deploy", "fetch-httplib.sh"), HTTPLIB_DIR],
                    timeout=600)
        if fetch.returncode == 77:
            raise unittest.SkipTest("no full httplib.h for the static build: " + fetch.stderr.strip())
        if fetch.returncode != 0:
            raise AssertionError(f"fetch-httplib.sh failed: {fetch.stderr}")
        sync_build_context()
        argv = cls.dockerfile.buildCommand()
        result = run(argv, cwd=CONTEXT_DIR, timeout=1800)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
        cls.root = tempfile.mkdtemp(prefix="root-", dir=IMAGE_CACHE)  # exec allowed, unlike some /tmp
        os.chmod(cls.root, 0o755)  # the image's / as uid 1337 sees it
        for _, src, dst in cls.dockerfile.copies:
            source, target = cls.dockerfile.localSource(src), os.path.join(cls.root, dst.lstrip("/"))
            if os.path.isdir(source):
                shutil.copytree(source, target)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(source, target)
        cls.image_files = files_under(cls.root)
        cls.agent = os.path.join(cls.root, "cacerts-agent")
        # A foreign binary runs under qemu-user, itself a static program placed in the root: the
        # test's CPU, not a file of the image (image_files is taken before).
        cls.launcher = ["/cacerts-agent"]
        if cls.emulator:
            shutil.copy2(cls.emulator, os.path.join(cls.root, emulator))
            cls.launcher = ["/" + emulator, "/cacerts-agent"]

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "root", None):
            shutil.rmtree(cls.root, ignore_errors=True)

    # --- the Dockerfile itself ----------------------------------------------------------

    def test_the_final_stage_is_one_static_binary_and_its_notices_running_as_1337(self):
        steps = self.dockerfile.final["steps"]
        self.assertRegex(self.dockerfile.base,
                         r"^(scratch|gcr\.io/distroless/static[-\w]*(:[\w.-]+)?(@sha256:[0-9a-f]{64})?)$")
        self.assertEqual([i for i, _ in steps if i not in ("COPY", "USER", "ENTRYPOINT", "LABEL")], [],
                         "the runtime stage may not run anything")
        self.assertIn(("USER", f"{UID}:{GID}"), steps)
        self.assertIn(("ENTRYPOINT", '["/cacerts-agent"]'), steps)
        self.assertEqual([dst for _, _, dst in self.dockerfile.copies], ["/cacerts-agent", "/" + DOC_DIR])
        machine, types = elf_segments(self.agent)
        self.assertEqual(machine, ARCHES[ARCH][3], f"the binary is not built for {ARCH}")
        self.assertNotIn(3, types, "PT_INTERP: the binary needs a dynamic loader")
        self.assertNotIn(2, types, "PT_DYNAMIC: the binary needs shared libraries")
        self.assertTrue(os.access(self.agent, os.X_OK))

    def test_the_build_stage_cross_compiles_on_the_build_platform(self):
        # buildx runs the build stage natively and passes each platform's TARGETARCH.
        self.assertIn("--platform=$BUILDPLATFORM", self.dockerfile.build["flags"])
        self.assertIn(("ARG", "TARGETARCH"), self.dockerfile.build["steps"])
        # Base images are build arguments, so that they can be pinned by digest.
        self.assertEqual(self.dockerfile.build["from"], "${BUILD_IMAGE}")
        self.assertEqual(self.dockerfile.final["from"], "${RUNTIME_IMAGE}")
        self.assertEqual(set(self.dockerfile.global_args), {"BUILD_IMAGE", "RUNTIME_IMAGE"})

    def test_the_image_holds_the_binary_its_notices_and_its_sbom_only(self):
        expected = {"cacerts-agent", SBOM, f"{DOC_DIR}/licenses/cacerts-agent/LICENSE"}
        expected |= {f"{DOC_DIR}/licenses/{name}/copyright" for name in (*LINKED, *RUNTIMES)}
        self.assertEqual(self.image_files, expected)
        for rel in expected:
            path = os.path.join(self.root, rel)
            self.assertGreater(os.path.getsize(path), 0, rel)
            self.assertTrue(os.stat(path).st_mode & 0o004, f"{rel} is not readable by uid {UID}")
        self.assertTrue(filecmp.cmp(os.path.join(SOURCE_DIR, "LICENSE"),
                                    os.path.join(self.root, DOC_DIR, "licenses/cacerts-agent/LICENSE"), shallow=False))
        for name, (package, _) in LINKED.items():
            notice = f"/usr/share/doc/{package.rstrip(':')}/copyright"
            self.assertTrue(filecmp.cmp(notice, os.path.join(self.root, DOC_DIR, "licenses", name, "copyright"),
                                        shallow=False), f"{name}: not the notice of {package.rstrip(':')}")

    def test_the_sbom_lists_what_was_linked_at_the_installed_versions(self):
        with open(os.path.join(self.root, SBOM), encoding="utf-8") as f:
            sbom = json.load(f)
        self.assertEqual(sbom["spdxVersion"], "SPDX-2.3")
        self.assertEqual(sbom["dataLicense"], "CC0-1.0")
        self.assertEqual(sbom["SPDXID"], "SPDXRef-DOCUMENT")
        self.assertTrue(sbom["documentNamespace"].startswith("https://"))
        self.assertRegex(sbom["creationInfo"]["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn(self.dockerfile.base, sbom["creationInfo"]["comment"])
        packages = {p["name"]: p for p in sbom["packages"]}
        self.assertEqual(len(packages), len(sbom["packages"]), "duplicate package names")
        ids = {p["SPDXID"]: p["name"] for p in sbom["packages"]}
        relations = {(ids.get(r["spdxElementId"], r["spdxElementId"]), r["relationshipType"],
                      ids.get(r["relatedSpdxElement"])) for r in sbom["relationships"]}

        agent = packages["cacerts-agent"]
        self.assertEqual(agent["versionInfo"], read_project_version())
        self.assertEqual(agent["licenseDeclared"], "Apache-2.0")
        with open(self.agent, "rb") as f:
            self.assertEqual(agent["checksums"], [{"algorithm": "SHA256",
                                                   "checksumValue": hashlib.sha256(f.read()).hexdigest()}])
        self.assertIn(("SPDXRef-DOCUMENT", "DESCRIBES", "cacerts-agent"), relations)

        for name, (package, license_id) in LINKED.items():
            with self.subTest(component=name):
                package = package + ARCH if package.endswith(":") else package
                self.assertIn(name, packages)
                self.assertEqual(packages[name]["versionInfo"], dpkg_version(package))
                self.assertEqual(packages[name]["licenseDeclared"], license_id)
                self.assertIn(("cacerts-agent", "STATIC_LINK", name), relations)
        for name in RUNTIMES:
            with self.subTest(component=name):
                self.assertIn(("cacerts-agent", "STATIC_LINK", name), relations)
                self.assertRegex(packages[name]["versionInfo"], r"^\d")
        self.assertEqual({n for _, t, n in relations if t == "STATIC_LINK"}, {*LINKED, *RUNTIMES})
        # The build's own tools, with their package versions.
        self.assertEqual({n for n, t, _ in relations if t == "BUILD_TOOL_OF"},
                         {"compiler", "linker", "cmake", "ninja"})

    def test_the_binary_is_linked_with_the_hot_code_first(self):
        # Only lld applies scripts/link-order.txt; without it the sidecar needs ~2 MiB more.
        self.assertTrue(in_context("scripts/link-order.txt",
                                   dockerignore_patterns(os.path.join(SOURCE_DIR, ".dockerignore"))))
        comment = subprocess.run(["readelf", "-p", ".comment", self.agent], capture_output=True,
                                 text=True, check=True).stdout
        self.assertIn("LLD", comment, "the image's binary was not linked by lld with the ordering file")

    def test_the_build_context_holds_the_sources_and_no_tests(self):
        patterns = dockerignore_patterns(os.path.join(SOURCE_DIR, ".dockerignore"))
        self.assertTrue(in_context("CMakeLists.txt", patterns))
        self.assertTrue(in_context("agent/main.cc", patterns))
        self.assertTrue(in_context("common/result.h", patterns))
        for included in ("LICENSE", "cmake/debian-cross.cmake", "scripts/build-image.sh",
                         "scripts/image-sbom.py", "scripts/install-deps.sh"):
            self.assertTrue(in_context(included, patterns), included)
        for excluded in ("tests/vault_server/main.cc", "build/cacerts-agent", ".git/HEAD",
                         "kustomize/post-render.sh", "scripts/test.sh"):
            self.assertFalse(in_context(excluded, patterns), excluded)

    # --- running it in an empty root ----------------------------------------------------

    def inRoot(self, agent_argv, env=None, with_tmpfs=False, copy_out=None):
        """Runs /cacerts-agent with agent_argv inside the root as UID:GID, optionally with a fresh
        tmpfs at /etc/cacerts (then `check` runs after it and the directory is copied to
        copy_out). Returns (returncode of the agent, output)."""
        if os.geteuid() != 0:
            self.fail("the closure test needs root for chroot and tmpfs (run it as CI does)")
        script = ['set -u', 'root=$1; shift']
        chroot = f"chroot --userspec={UID}:{GID} \"$root\""
        if with_tmpfs:
            script.append('mount -t tmpfs -o size=4m,mode=0777 cacerts "$root/etc/cacerts"')
        agent = " ".join(self.launcher)
        script.append(f'{chroot} {agent} "$@"; rc=$?')
        if with_tmpfs:
            script.append(f'[ "$rc" -ne 0 ] || {{ {chroot} {agent} check --dir /etc/cacerts; rc=$?; }}')
            script.append(f'cp -a "$root/etc/cacerts/." {shlex.quote(copy_out)}/')
        script.append('exit "$rc"')
        argv = ["unshare", "--mount", "--propagation", "private", "--fork", "--",
                "sh", "-c", "\n".join(script), "sh", self.root, *agent_argv]
        result = run(argv, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}, timeout=120)
        output = result.stdout + result.stderr
        print(f"$ cacerts-agent {' '.join(agent_argv)}\n{output}")
        return result.returncode, output

    def startVault(self, workdir):
        """Starts the Vault test server with its demo data (KV secret/istio/cacerts, kubernetes
        auth role istiod, PKI mount pki) and places the agent's inputs where the pod mounts
        them (kubelet's doing, not image files). Returns the server's address."""
        server = os.environ.get("CACERTS_VAULT_TEST_SERVER") or os.path.join(BUILD_DIR, "vault-test-server")
        if not os.access(server, os.X_OK):
            self.fail(f"{server} not built (build the vault-test-server target)")
        ready, ca, token, jwt = (os.path.join(workdir, n) for n in ("ready", "ca.crt", "token", "jwt"))
        proc = subprocess.Popen([server, "--seed-demo", "--listen", "127.0.0.1:0", "--ready-file", ready,
                                 "--ca-out", ca, "--token-out", token, "--jwt-out", jwt],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: (proc.terminate(), proc.communicate(timeout=30)))
        deadline = time.monotonic() + 60
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if proc.poll() is not None:
                self.fail(f"vault-test-server exited {proc.returncode}: {proc.stdout.read()}")
            if time.monotonic() > deadline:
                self.fail("vault-test-server did not become ready within 60 s")
            time.sleep(0.05)
        with open(ready, encoding="utf-8") as f:
            text = f.read()
        match = re.search(r"(?:https://)?127\.0\.0\.1:(\d+)", text) or re.search(r"^\s*(\d+)\s*$", text)
        self.assertTrue(match, f"unrecognised ready file: {text!r}")
        for src, dst in ((ca, ROOT_VAULT_CA), (jwt, ROOT_JWT), (token, ROOT_VAULT_TOKEN)):
            target = os.path.join(self.root, dst.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(src, target)
            os.chmod(target, 0o644)
            self.addCleanup(lambda path=target: os.path.exists(path) and os.remove(path))
        os.makedirs(os.path.join(self.root, "etc", "cacerts"), exist_ok=True)
        return f"https://127.0.0.1:{match.group(1)}"

    def assertPublished(self, outdir):
        names = set(os.listdir(outdir))
        self.assertTrue(set(PUBLISHED) <= names, names)
        self.assertNotIn("tls.crt", names)
        with open(os.path.join(outdir, "ca-cert.pem"), encoding="ascii") as f:
            self.assertTrue(f.read().startswith("-----BEGIN CERTIFICATE-----"))
        with open(os.path.join(outdir, "ca-key.pem"), encoding="ascii") as f:
            self.assertRegex(f.readline(), r"^-----BEGIN (RSA |EC )?PRIVATE KEY-----$")

    def test_version_runs_in_an_empty_root(self):
        rc, output = self.inRoot(["version"])
        self.assertEqual(rc, 0, output)
        self.assertIn("0.1.0", output)

    def test_help_runs_in_an_empty_root(self):
        rc, output = self.inRoot(["--help"])
        self.assertEqual(rc, 0, output)
        for command in ("init", "sidecar", "check"):
            self.assertIn(command, output)

    def test_init_publishes_from_vault_in_an_empty_root(self):
        with tempfile.TemporaryDirectory() as work:
            addr = self.startVault(work)
            out = os.path.join(work, "published")
            os.mkdir(out)
            rc, output = self.inRoot(
                ["init", "--vault-addr", addr, "--vault-cacert", ROOT_VAULT_CA, "--auth-method", "token",
                 "--token-file", ROOT_VAULT_TOKEN, *KV_FLAGS, "--dir", "/etc/cacerts"],
                with_tmpfs=True, copy_out=out)
            self.assertEqual(rc, 0, output)
            self.assertPublished(out)

    def test_init_runs_on_the_pod_environment_alone(self):
        # As in the pod: no flags, only the environment the init container gets from the shipped
        # ConfigMap (kv or pki) and its own env, with kubernetes auth through the projected
        # token. Only VAULT_ADDR is changed, to point at the test server.
        container = pod_spec(read_yaml_file(
            os.path.join(COMPONENTS_DIR, "init-only", "init-container.yaml")))["initContainers"][0]
        for source in ("kv", "pki"):
            with self.subTest(source=source), tempfile.TemporaryDirectory() as work:
                config = read_agent_env(source)
                env = {**config, **env_map(container)}
                env["VAULT_ADDR"] = self.startVault(work)
                out = os.path.join(work, "published")
                os.mkdir(out)
                rc, output = self.inRoot(container["args"], env=env, with_tmpfs=True, copy_out=out)
                self.assertEqual(rc, 0, output)
                self.assertPublished(out)
                self.assertIn("event=published", output)

    def test_the_native_sidecar_becomes_ready_in_an_empty_root(self):
        # The startupProbe contract: /readyz answers 200 once a complete set is published,
        # with the native sidecar's own environment.
        container = pod_spec(read_yaml_file(
            os.path.join(COMPONENTS_DIR, "native-sidecar", "native-sidecar.yaml")))["initContainers"][0]
        config = read_agent_env("kv")
        with tempfile.TemporaryDirectory() as work:
            env = {**config, **env_map(container)}
            env["VAULT_ADDR"] = self.startVault(work)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env["CACERTS_AGENT_LISTEN"] = f"127.0.0.1:{port}"
            script = "\n".join([
                'mount -t tmpfs -o size=4m,mode=0777 cacerts "$1/etc/cacerts"',
                f'exec chroot --userspec={UID}:{GID} "$1" {" ".join(self.launcher)} sidecar'])
            proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM", "--",
                 "sh", "-c", script, "sh", self.root],
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
            output = None
            try:
                status = None
                deadline = time.monotonic() + 60
                while status != 200 and proc.poll() is None and time.monotonic() < deadline:
                    status = http_status(f"http://127.0.0.1:{port}/readyz")
                    time.sleep(0.1)
                if status != 200 and proc.poll() is not None:
                    output = proc.communicate(timeout=60)[0]
                    if "event=unsupported_command" in output:
                        self.skipTest("this build of cacerts-agent has no sidecar mode yet")
                    self.fail(f"sidecar exited {proc.returncode} before it was ready:\n{output}")
                self.assertEqual(status, 200, "sidecar never became ready")
                self.assertEqual(http_status(f"http://127.0.0.1:{port}/healthz"), 200)
                self.assertEqual(http_status(f"http://127.0.0.1:{port}/metrics"), 200)
            finally:
                if output is None:
                    output = stop_process_group(proc)
                print(f"$ cacerts-agent sidecar\n{output}")
            self.assertIn("event=published", output)


def stop_process_group(proc):
    """SIGTERM to the whole group (unshare --fork ignores SIGTERM itself; the agent handles
    it), SIGKILL if that does not end it within 30 s. Returns the output."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0] + "\n(killed: SIGTERM did not stop it within 30 s)"


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


if __name__ == "__main__":
    run_tests()
