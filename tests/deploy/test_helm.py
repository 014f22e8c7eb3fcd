#!/usr/bin/python3
"""Every install path rendered by a real helm from the real istio-discovery charts.

helm comes from tests/deploy/fetch-tools.sh (cached in the build directory) or $CACERTS_HELM;
the tests are skipped, with the reason, only when neither yields one.
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from deploy_support import (  # noqa: E402
    HELM_VALUES_DIR, POST_RENDER, VARIANTS, ContractAssertions,
    by_name, chart_dir, doc_key, is_istiod_deployment, kustomize_with_components, load_docs, pod_spec,
    read_yaml_file, require_helm, require_kubectl, run, run_tests, strip_kustomize_changes,
    strip_values_changes)
from test_kustomize import as_kustomize_dir  # noqa: E402

CHART_VERSIONS = ("1.24.0", "1.30.0")
REVISIONS = ("", "canary")
POST_RENDER_VARIANTS = ("sidecar", "native-sidecar", "init-only", "sidecar multiroot",
                        "native-sidecar multiroot")
VALUES_FILES = {"native-sidecar": "values-native-sidecar.yaml", "init-only": "values-init-only.yaml"}


def without_agent_values(values):
    """Chart values as recorded in a ConfigMap, minus what the values files set."""
    for scope in (values, values.get("pilot") or {}):
        for key in ("initContainers", "volumes", "volumeMounts"):
            scope.pop(key, None)
        env = scope.get("env")
        if isinstance(env, dict):
            env.pop("ROOT_CA_DIR", None)
            if not env:
                scope.pop("env")
    return values


class HelmChartTest(ContractAssertions):

    @classmethod
    def setUpClass(cls):
        require_kubectl()
        cls.helm = require_helm()
        cls.home = tempfile.TemporaryDirectory(prefix="cacerts-helm-")
        cls.env = dict(os.environ, **{var: os.path.join(cls.home.name, var.lower()) for var in (
            "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")})
        cls.plain = {}

    @classmethod
    def tearDownClass(cls):
        cls.home.cleanup()

    def template(self, version, revision, *extra):
        argv = [self.helm, "template", "istiod", chart_dir(version), "--namespace", "istio-system"]
        if revision:
            argv += ["--set", f"revision={revision}"]
        result = run(argv + list(extra), env=self.env)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def plainRender(self, version, revision):
        key = (version, revision)
        if key not in self.plain:
            self.plain[key] = self.template(version, revision)
        return self.plain[key]

    def postRender(self, version, revision, variant):
        extra = ["--post-renderer", POST_RENDER]
        for word in variant.split():
            extra += ["--post-renderer-args", word]
        return load_docs(self.template(version, revision, *extra))

    def assertRevision(self, deployment, revision):
        name = "istiod-" + revision if revision else "istiod"
        self.assertEqual(deployment["metadata"]["name"], name)
        self.assertEqual(pod_spec(deployment)["serviceAccountName"], name)

    def test_the_post_renderer_patches_istiod_of_both_charts(self):
        for version in CHART_VERSIONS:
            for revision in REVISIONS:
                plain_text = self.plainRender(version, revision)
                plain = load_docs(plain_text)
                original = next(d for d in plain if is_istiod_deployment(d))
                for variant in POST_RENDER_VARIANTS:
                    with self.subTest(chart=version, revision=revision, variant=variant):
                        out = self.postRender(version, revision, variant)
                        [deployment] = self.patchedIstiods(out)
                        self.assertRevision(deployment, revision)
                        self.assertKustomizePod(deployment, variant)
                        self.assertOnlyIntendedChanges(plain, out, strip_kustomize_changes(original))
                        direct = load_docs(kustomize_with_components(plain_text, VARIANTS[variant]))
                        self.assertEqual(sorted(map(str, out)), sorted(map(str, direct)))

    def test_values_files_install_the_agent_without_a_post_renderer(self):
        for version in CHART_VERSIONS:
            for revision in REVISIONS:
                plain = load_docs(self.plainRender(version, revision))
                for variant, values in VALUES_FILES.items():
                    with self.subTest(chart=version, revision=revision, values=values):
                        out = load_docs(self.template(version, revision, "--values",
                                                      os.path.join(HELM_VALUES_DIR, values)))
                        [deployment] = self.patchedIstiods(out)
                        self.assertRevision(deployment, revision)
                        self.assertValuesPod(deployment, variant)
                        self.assertOnlyIntendedChanges(
                            plain, out, strip_values_changes,
                            lambda b, a, v=values: self.checkValuesRecord(b, a, v))

    def checkValuesRecord(self, before, after, values):
        """The 1.30 chart copies its values into ConfigMaps: `values[-<rev>]` (for tooling) and
        the injector's `values` (under `pilot`). Those copies, and only they, may show the
        values file; everything else in them must be as rendered without it."""
        if before["kind"] != "ConfigMap":
            return False
        self.assertEqual(set(after["data"]), set(before["data"]))
        for key, text in before["data"].items():
            if after["data"][key] == text:
                continue
            self.assertEqual(without_agent_values(json.loads(after["data"][key])),
                             without_agent_values(json.loads(text)), f"{key} of {doc_key(before)}")
        if before["metadata"]["name"].startswith("values"):
            given = json.loads(after["data"]["original-values"])
            self.assertEqual(given["initContainers"], read_yaml_file(
                os.path.join(HELM_VALUES_DIR, values))["initContainers"])
        return True

    def test_values_and_post_renderer_configure_the_same_agent(self):
        for version in CHART_VERSIONS:
            for variant, values in VALUES_FILES.items():
                with self.subTest(chart=version, variant=variant):
                    by_values = load_docs(self.template(version, "", "--values",
                                                        os.path.join(HELM_VALUES_DIR, values)))
                    by_patch = self.postRender(version, "", variant)
                    agent_values = self.agentContainers(by_values)
                    agent_patch = self.agentContainers(by_patch)
                    self.assertEqual(list(agent_values), list(agent_patch))
                    for name, container in agent_values.items():
                        self.assertEqual(as_kustomize_dir(container), agent_patch[name])

    def agentContainers(self, docs):
        [deployment] = self.patchedIstiods(docs)
        spec = pod_spec(deployment)
        return {n: c for n, c in by_name(spec.get("initContainers", []) + spec["containers"]).items()
                if n.startswith("cacerts-")}

    def test_the_post_renderer_fails_the_install_when_istiod_is_not_rendered(self):
        # A remote-control-plane install renders no istiod Deployment; helm must fail, not
        # install an unpatched control plane.
        for version in CHART_VERSIONS:
            with self.subTest(chart=version):
                argv = [self.helm, "template", "istiod", chart_dir(version), "--namespace",
                        "istio-system", "--set", "istiodRemote.enabled=true",
                        "--post-renderer", POST_RENDER]
                result = run(argv, env=self.env)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn("nothing was patched", result.stderr)


if __name__ == "__main__":
    run_tests()
