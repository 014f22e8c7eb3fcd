#!/usr/bin/python3
"""Offline linters: shellcheck on every shell script, yamllint on the Kubernetes and Helm YAML."""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import unittest  # noqa: E402

from deploy_support import SOURCE_DIR, run, run_tests  # noqa: E402

# Build trees, VCS data and third-party inputs are not ours to lint.
SKIP_DIRS = {".git", "testdata", "node_modules", "__pycache__"}
YAML_ROOTS = ("kustomize", "helm", os.path.join("tests", "deploy"))


def project_files():
    for root, dirs, files in os.walk(SOURCE_DIR):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("build"))
        for name in sorted(files):
            yield os.path.join(root, name)


def is_shell_script(path):
    if path.endswith(".sh"):
        return True
    try:
        with open(path, "rb") as f:
            first = f.readline(100)
    except OSError:
        return False
    return first.startswith(b"#!") and any(
        first.rstrip().endswith(shell) for shell in (b"/sh", b"/bash", b" sh", b" bash"))


def require(tool, package):
    path = shutil.which(tool)
    if not path:
        raise AssertionError(f"{tool} not found; install Debian's {package} package")
    return path


class LintTest(unittest.TestCase):

    def test_shell_scripts_pass_shellcheck(self):
        shellcheck = require("shellcheck", "shellcheck")
        scripts = [p for p in project_files() if is_shell_script(p)]
        self.assertIn(os.path.join(SOURCE_DIR, "kustomize", "post-render.sh"), scripts)
        result = run([shellcheck, "--severity=style", *scripts])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_kubernetes_and_helm_yaml_pass_yamllint(self):
        yamllint = require("yamllint", "yamllint")
        config = os.path.join(SOURCE_DIR, "tests", "deploy", "yamllint.yaml")
        files = [p for p in project_files() if p.endswith((".yaml", ".yml")) and any(
            p.startswith(os.path.join(SOURCE_DIR, r) + os.sep) for r in YAML_ROOTS)]
        self.assertGreater(len(files), 10)
        result = run([yamllint, "--strict", "--format", "parsable", "-c", config, *files])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_deployment_test_scripts_pass_pyflakes(self):
        if run([sys.executable, "-m", "pyflakes", "--version"]).returncode != 0:
            raise AssertionError("pyflakes not found; install Debian's python3-pyflakes package")
        scripts = sorted(p for p in project_files() if p.endswith(".py"))
        self.assertIn(os.path.abspath(__file__), scripts)
        result = run([sys.executable, "-m", "pyflakes", *scripts])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class VersionTest(unittest.TestCase):
    """One version everywhere: CMake's project(VERSION), the image's OCI label, the image tag
    the manifests name, and the Helm 4 plugin."""

    def test_the_version_agrees_everywhere(self):
        with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
            version = re.search(r"project\(\w+ VERSION ([0-9.]+)", f.read()).group(1)
        with open(os.path.join(SOURCE_DIR, "Dockerfile"), encoding="utf-8") as f:
            dockerfile = f.read()
        self.assertIn(f'org.opencontainers.image.version="{version}"', dockerfile)
        self.assertIn('org.opencontainers.image.licenses="Apache-2.0"', dockerfile)
        images = set()
        for root in ("kustomize", "helm"):
            for path in project_files():
                if path.startswith(os.path.join(SOURCE_DIR, root) + os.sep) and path.endswith(".yaml"):
                    with open(path, encoding="utf-8") as f:
                        images |= set(re.findall(r"image: (ghcr\.io/cacerts-agent/cacerts-agent:\S+)", f.read()))
        self.assertEqual(images, {f"ghcr.io/cacerts-agent/cacerts-agent:{version}"})
        with open(os.path.join(SOURCE_DIR, "kustomize", "plugin.yaml"), encoding="utf-8") as f:
            self.assertIn(f"\nversion: {version}\n", f.read())


if __name__ == "__main__":
    run_tests()
