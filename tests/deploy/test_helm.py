#!/usr/bin/python3
"""Every install path rendered by a real helm from the real istio-discovery charts.

helm comes from tests/deploy/fetch-tools.sh (cached in the build directory) or $CACERTS_HELM;
the tests are skipped, with the reason, only when neither yields one.
"""

import sys

sys.dont_write_bytecode = True

import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from deploy_support import (  # noqa: E402
    AGENT_CONTAINERS, API_TOKEN_DIR, API_TOKEN_MASK_VOLUME, METRICS_PORT, MIGRATE_VOLUME, MIGRATION_CONFIGMAP,
    TOKEN_VOLUME, env_map,
    HELM_VALUES_DIR, POST_RENDER, VARIANTS, ContractAssertions,
    by_name, chart_dir, doc_key, is_istiod_deployment, kustomize_with_components, load_docs, pod_spec,
    KUSTOMIZE_DIR, read_yaml_file, require_helm, require_helm4, require_kubectl, run, run_tests, strip_kustomize_changes,
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
    if values.get("pilot") == {}:
        values.pop("pilot")
    return values


class HelmRender(ContractAssertions):
    """A real helm with its own empty home; renders of the charts in the test data."""

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
            self.assertSchemaValid(load_docs(self.plain[key]))
        return self.plain[key]

    def postRender(self, version, revision, variant):
        extra = ["--post-renderer", POST_RENDER]
        for word in variant.split():
            extra += ["--post-renderer-args", word]
        return load_docs(self.template(version, revision, *extra))

    def render(self, version, *extra):
        argv = [self.helm, "template", "istiod", chart_dir(version), "--namespace", "istio-system"]
        return run(argv + list(extra), env=self.env)

    def agentContainers(self, docs):
        [deployment] = self.patchedIstiods(docs)
        spec = pod_spec(deployment)
        return {n: c for n, c in by_name(spec.get("initContainers", []) + spec["containers"]).items()
                if n.startswith("cacerts-")}


class HelmChartTest(HelmRender):

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
            self.assertEqual(given["pilot"]["initContainers"], read_yaml_file(
                os.path.join(HELM_VALUES_DIR, values))["pilot"]["initContainers"])
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

    def test_a_pod_annotation_rolls_istiod_on_the_values_path(self):
        # docs/install.md: --set-string pilot.podAnnotations.cacerts-agent-config=<hash of agent.env>
        for version in CHART_VERSIONS:
            with self.subTest(chart=version):
                values = os.path.join(HELM_VALUES_DIR, VALUES_FILES["native-sidecar"])
                templates = []
                for digest in ("0123456789abcdef", "fedcba9876543210"):
                    out = load_docs(self.template(version, "", "-f", values, "--set-string",
                                                  f"pilot.podAnnotations.cacerts-agent-config={digest}"))
                    [deployment] = self.patchedIstiods(out)
                    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
                    self.assertEqual(annotations["cacerts-agent-config"], digest)
                    templates.append(deployment["spec"]["template"])
                self.assertNotEqual(templates[0], templates[1])

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


def user_values(tmp, name, values):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(values, f)  # JSON is YAML
    return path


USER_INIT = {"name": "user-init", "image": "busybox", "command": ["true"]}
USER_VOLUME = {"name": "user-data", "emptyDir": {}}
USER_MOUNT = {"name": "user-data", "mountPath": "/var/lib/user"}


class FailClosedTest(HelmRender):
    """post-render.sh --verify on what helm renders, and the values files' render-time guard
    against a user's own initContainers, volumes, volumeMounts or env (the charts copy
    `pilot.*` over the top-level values, so a user's `pilot` list replaces ours)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory(prefix="cacerts-user-values-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        super().tearDownClass()

    def values(self, variant):
        return os.path.join(HELM_VALUES_DIR, VALUES_FILES[variant])

    def assertVerified(self, text):
        result = run([POST_RENDER, "--verify"], input=text)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, text, "--verify must pass its input through unchanged")
        self.assertIn("1 istiod Deployment(s) wired to cacerts-agent", result.stderr)

    def assertRejected(self, text, reason):
        result = run([POST_RENDER, "--verify"], input=text)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn(reason, result.stderr)

    def test_verify_passes_every_install_path_through_unchanged(self):
        for version in CHART_VERSIONS:
            for variant in POST_RENDER_VARIANTS + ("sidecar vault-ca-secret",):
                with self.subTest(chart=version, post_render=variant):
                    args = [a for w in variant.split() for a in ("--post-renderer-args", w)]
                    result = self.render(version, "--post-renderer", POST_RENDER, *args)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertVerified(result.stdout)
            for variant in VALUES_FILES:
                with self.subTest(chart=version, values=variant):
                    plain = self.render(version, "-f", self.values(variant))
                    self.assertEqual(plain.returncode, 0, plain.stderr)
                    self.assertVerified(plain.stdout)
                    # As a post-renderer on the values-only path: helm installs exactly what
                    # it rendered, or nothing.
                    verified = self.render(version, "-f", self.values(variant),
                                         "--post-renderer", POST_RENDER, "--post-renderer-args", "--verify")
                    self.assertEqual(verified.returncode, 0, verified.stderr)
                    self.assertEqual(load_docs(verified.stdout), load_docs(plain.stdout))

    def test_verify_fails_an_install_without_the_agent(self):
        for version in CHART_VERSIONS:
            with self.subTest(chart=version):
                self.assertRejected(self.plainRender(version, ""), "istio-system/istiod: volume cacerts")
                result = self.render(version, "--post-renderer", POST_RENDER, "--post-renderer-args", "--verify")
                self.assertNotEqual(result.returncode, 0)
                self.assertIn("no agent init container", result.stderr)

    def test_a_later_users_volumes_mounts_or_ca_dir_fail_the_render(self):
        cases = {
            "pilot-volumes": {"pilot": {"volumes": [USER_VOLUME]}},
            "pilot-mounts": {"pilot": {"volumeMounts": [USER_MOUNT]}},
            "pilot-both": {"pilot": {"volumes": [USER_VOLUME], "volumeMounts": [USER_MOUNT]}},
            "pilot-env": {"pilot": {"env": {"ROOT_CA_DIR": "/etc/cacerts"}}},
        }
        for version in CHART_VERSIONS:
            for variant in VALUES_FILES:
                for case, values in cases.items():
                    with self.subTest(chart=version, values=variant, user=case):
                        user = user_values(self.tmp.name, case + ".yaml", values)
                        result = self.render(version, "-f", self.values(variant), "-f", user)
                        self.assertNotEqual(result.returncode, 0, "rendered despite the user's values")
                        self.assertIn("cacerts-agent: a later values file or --set replaced", result.stderr)
                        self.assertIn(f"Give -f helm/{VALUES_FILES[variant]} last", result.stderr)
                with self.subTest(chart=version, values=variant, user="--set"):
                    result = self.render(version, "-f", self.values(variant),
                                       "--set", "pilot.volumeMounts[0].name=x,pilot.volumeMounts[0].mountPath=/x")
                    self.assertIn("cacerts-agent: a later values file or --set replaced", result.stderr)

    def test_ours_given_last_win_over_the_users_lists(self):
        lists = {"initContainers": [USER_INIT], "volumes": [USER_VOLUME], "volumeMounts": [USER_MOUNT]}
        cases = {
            "pilot-before": ("before", {"pilot": dict(lists)}),
            "top-level-before": ("before", dict(lists)),
            # Top-level lists lose to our `pilot` ones whatever the order.
            "top-level-after": ("after", dict(lists, env={"ROOT_CA_DIR": "/etc/cacerts"})),
            # Maps merge: the user's env keeps ours.
            "pilot-env-after": ("after", {"pilot": {"env": {"PILOT_TRACE_SAMPLING": "1"}}}),
        }
        for version in CHART_VERSIONS:
            for variant in VALUES_FILES:
                for case, (order, values) in cases.items():
                    with self.subTest(chart=version, values=variant, user=case):
                        user = user_values(self.tmp.name, case + ".yaml", values)
                        files = [user, self.values(variant)] if order == "before" else \
                            [self.values(variant), user]
                        result = self.render(version, *[a for f in files for a in ("-f", f)])
                        self.assertEqual(result.returncode, 0, result.stderr)
                        [deployment] = self.patchedIstiods(load_docs(result.stdout))
                        self.assertValuesPod(deployment, variant)
                        self.assertVerified(result.stdout)

    def test_a_later_users_init_containers_are_caught_by_verify(self):
        # The one replacement no values file can guard against: the guard lives in the
        # initContainers that the user's list replaced. istiod would start with an empty CA
        # directory and sign with a self-signed root; --verify refuses it.
        for version in CHART_VERSIONS:
            for variant in VALUES_FILES:
                with self.subTest(chart=version, values=variant):
                    user = user_values(self.tmp.name, "pilot-init.yaml", {"pilot": {"initContainers": [USER_INIT]}})
                    result = self.render(version, "-f", self.values(variant), "-f", user)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertRejected(result.stdout, "no agent init container")
                    result = self.render(version, "-f", self.values(variant), "-f", user,
                                       "--post-renderer", POST_RENDER, "--post-renderer-args", "--verify")
                    self.assertNotEqual(result.returncode, 0)
                    self.assertIn("istiod would start without its CA", result.stderr)


def without_migration_source(deployment):
    """The Deployment with the migration volume's source left out."""
    d = copy.deepcopy(deployment)
    pod_spec(d)["volumes"] = [{"name": v["name"]} if v["name"] == MIGRATE_VOLUME else v for v in pod_spec(d)["volumes"]]
    return d


class MigrationValuesTest(HelmRender):
    """helm/values-migrate-from-*.yaml after a variant's values file: the old CA's Secret
    reaches the agent only, the rest of the install is the variant's, and it matches what the
    post-renderer's migrate-from-* argument does (docs/migration.md)."""

    LAYOUTS = {"istio-ca-secret": "values-migrate-from-istio-ca-secret.yaml",
               "cacerts": "values-migrate-from-cacerts.yaml"}

    def values(self, name):
        return os.path.join(HELM_VALUES_DIR, name)

    def test_the_migration_values_repeat_each_variants_volumes_but_the_placeholder(self):
        for secret, migrate in self.LAYOUTS.items():
            ours = read_yaml_file(self.values(migrate))
            self.assertEqual(list(ours), ["pilot"])
            self.assertEqual(list(ours["pilot"]), ["volumes"])
            for variant, values in VALUES_FILES.items():
                with self.subTest(layout=secret, variant=variant):
                    theirs = read_yaml_file(self.values(values))["pilot"]["volumes"]
                    expected = [{"name": MIGRATE_VOLUME, "secret": {"secretName": secret}}
                                if v["name"] == MIGRATE_VOLUME else v for v in theirs]
                    self.assertEqual(ours["pilot"]["volumes"], expected)

    def test_the_old_secret_reaches_the_agent_only_on_both_charts(self):
        for version in CHART_VERSIONS:
            for variant, values in VALUES_FILES.items():
                plain = load_docs(self.template(version, "", "-f", self.values(values)))
                for secret, migrate in self.LAYOUTS.items():
                    with self.subTest(chart=version, variant=variant, layout=secret):
                        text = self.template(version, "", "-f", self.values(values), "-f", self.values(migrate))
                        out = load_docs(text)
                        [deployment] = self.patchedIstiods(out)
                        self.assertValuesPod(deployment, variant)
                        spec = pod_spec(deployment)
                        self.assertEqual(by_name(spec["volumes"])[MIGRATE_VOLUME],
                                         {"name": MIGRATE_VOLUME, "secret": {"secretName": secret}})
                        mounted_by = sorted(c["name"] for c in spec["containers"] + spec["initContainers"]
                                            for m in c.get("volumeMounts") or [] if m["name"] == MIGRATE_VOLUME)
                        self.assertEqual(mounted_by, [n for n in AGENT_CONTAINERS if n in {
                            c["name"] for c in spec["initContainers"]}])
                        self.assertNotIn("discovery", mounted_by)
                        # Everything else is the variant's own install.
                        [before] = [d for d in plain if is_istiod_deployment(d)]
                        self.assertEqual(without_migration_source(deployment), without_migration_source(before))
                        verified = run([POST_RENDER, "--verify"], input=text)
                        self.assertEqual(verified.returncode, 0, verified.stderr)

    def test_values_and_post_renderer_migrate_the_same_way(self):
        for version in CHART_VERSIONS:
            for variant, values in VALUES_FILES.items():
                for secret, migrate in self.LAYOUTS.items():
                    with self.subTest(chart=version, variant=variant, layout=secret):
                        by_values = load_docs(self.template(version, "", "-f", self.values(values),
                                                            "-f", self.values(migrate)))
                        by_patch = self.postRender(version, "", f"{variant} migrate-from-{secret}")
                        self.assertEqual(by_name(pod_spec(next(d for d in by_values if is_istiod_deployment(d)))[
                            "volumes"])[MIGRATE_VOLUME], by_name(pod_spec(next(
                                d for d in by_patch if is_istiod_deployment(d)))["volumes"])[MIGRATE_VOLUME])
                        agent_values = self.agentContainers(by_values)
                        agent_patch = self.agentContainers(by_patch)
                        self.assertEqual(list(agent_values), list(agent_patch))
                        for name, c in agent_values.items():
                            # The post-renderer's ConfigMap carries a content hash; the values
                            # path's is created by hand under the plain name.
                            patched = agent_patch[name]
                            patched["envFrom"][1]["configMapRef"]["name"] = MIGRATION_CONFIGMAP
                            self.assertEqual(as_kustomize_dir(c), patched)

    def test_the_migration_values_before_the_variant_leave_only_the_placeholder(self):
        # Helm replaces lists: the variant's volumes, given last, win. The agent then finds no
        # old CA under --migrate-from and refuses to start (exit 2), so nothing is lost.
        text = self.template("1.30.0", "", "-f", self.values(self.LAYOUTS["cacerts"]),
                             "-f", self.values(VALUES_FILES["native-sidecar"]))
        [deployment] = self.patchedIstiods(load_docs(text))
        self.assertIn("emptyDir", by_name(pod_spec(deployment)["volumes"])[MIGRATE_VOLUME])


class PlatformTest(HelmRender):
    """OpenShift, the chart's NetworkPolicy, and the API token kept out of the agent."""

    def installs(self, version, *extra):
        """(path, rendered docs) for every install path, with extra helm arguments."""
        for variant in POST_RENDER_VARIANTS:
            args = [a for w in variant.split() for a in ("--post-renderer-args", w)]
            yield "post-render " + variant, self.render(version, *extra, "--post-renderer", POST_RENDER, *args)
        for variant, values in VALUES_FILES.items():
            yield "values " + variant, self.render(version, *extra, "-f", os.path.join(HELM_VALUES_DIR, values))

    def test_openshift_renders_set_no_fixed_uid(self):
        # restricted-v2 assigns a UID from the namespace's range to every container of the
        # pod and rejects a fixed one outside it.
        for version in CHART_VERSIONS:
            for path, result in self.installs(version, "--set", "global.platform=openshift"):
                with self.subTest(chart=version, path=path):
                    self.assertEqual(result.returncode, 0, result.stderr)
                    [deployment] = self.patchedIstiods(load_docs(result.stdout))
                    spec = pod_spec(deployment)
                    variant = path.split(" ", 1)[1]
                    if path.startswith("values"):
                        self.assertValuesPod(deployment, variant)
                    else:
                        self.assertKustomizePod(deployment, variant)
                    for c in spec["containers"] + spec.get("initContainers", []):
                        context = c.get("securityContext") or {}
                        self.assertFalse({"runAsUser", "runAsGroup"} & set(context), c["name"])
                    self.assertFalse({"runAsUser", "runAsGroup"} & set(spec.get("securityContext") or {}))
                    verify = run([POST_RENDER, "--verify"], input=result.stdout)
                    self.assertEqual(verify.returncode, 0, verify.stderr)

    def test_the_charts_network_policy_admits_the_metrics_port(self):
        plain = load_docs(self.render("1.30.0", "--set", "global.networkPolicy.enabled=true").stdout)
        [original] = [d for d in plain if d["kind"] == "NetworkPolicy"]
        metrics_rule = {"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}
        for path, result in self.installs("1.30.0", "--set", "global.networkPolicy.enabled=true"):
            with self.subTest(path=path):
                self.assertEqual(result.returncode, 0, result.stderr)
                [policy] = [d for d in load_docs(result.stdout) if d["kind"] == "NetworkPolicy"]
                if path.startswith("post-render") and "init-only" not in path:
                    self.assertEqual(policy["spec"]["ingress"], original["spec"]["ingress"] + [metrics_rule])
                    self.assertEqual({k: v for k, v in policy["spec"].items() if k != "ingress"},
                                     {k: v for k, v in original["spec"].items() if k != "ingress"})
                else:
                    # init-only has no port to open; values cannot reach the chart's policy.
                    self.assertEqual(policy, original)
        # Without the policy (the default, and chart 1.24) nothing is added.
        for version in CHART_VERSIONS:
            out = load_docs(self.render(version, "--post-renderer", POST_RENDER).stdout)
            self.assertFalse([d for d in out if d["kind"] == "NetworkPolicy"])

    def test_the_values_paths_extra_network_policy_admits_only_the_metrics_port(self):
        policy = read_yaml_file(os.path.join(HELM_VALUES_DIR, "networkpolicy-agent-metrics.yaml"))
        self.assertEqual(policy["spec"], {
            "podSelector": {"matchLabels": {"app": "istiod"}}, "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]})

    def test_the_ha_settings_in_the_docs_render_a_pdb_and_two_replicas(self):
        # docs/install.md, "High availability": --set autoscaleMin=2 (HPA) or replicaCount=2.
        for version in CHART_VERSIONS:
            for extra in (["--set", "autoscaleMin=2"], ["--set", "replicaCount=2", "--set", "autoscaleEnabled=false"]):
                for path, result in self.installs(version, *extra):
                    with self.subTest(chart=version, ha=extra[1], path=path):
                        self.assertEqual(result.returncode, 0, result.stderr)
                        docs = load_docs(result.stdout)
                        [pdb] = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
                        self.assertEqual(pdb["spec"]["minAvailable"], 1)
                        self.assertEqual(pdb["spec"]["selector"]["matchLabels"]["app"], "istiod")
                        [deployment] = self.patchedIstiods(docs)
                        if "replicaCount=2" in extra[1]:
                            self.assertEqual(deployment["spec"]["replicas"], 2)
                        else:
                            [hpa] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
                            self.assertEqual(hpa["spec"]["minReplicas"], 2)
                        verify = run([POST_RENDER, "--verify"], input=result.stdout)
                        self.assertEqual(verify.returncode, 0, verify.stderr)

    def test_the_agent_never_holds_the_api_token(self):
        # kubelet mounts istiod's API token (which reads Secrets cluster-wide) into every
        # container that has no mount of its own at the service-account path; the agent logs
        # in to Vault with a token whose audience the API server does not accept.
        for version in CHART_VERSIONS:
            for path, result in self.installs(version):
                with self.subTest(chart=version, path=path):
                    [deployment] = self.patchedIstiods(load_docs(result.stdout))
                    spec = pod_spec(deployment)
                    volumes = by_name(spec["volumes"])
                    self.assertEqual(volumes[TOKEN_VOLUME]["projected"]["sources"][0]["serviceAccountToken"]["audience"],
                                     "vault")
                    for c in spec["containers"] + spec.get("initContainers", []):
                        at_sa_dir = [m for m in c.get("volumeMounts", []) if m["mountPath"] == API_TOKEN_DIR]
                        if c["name"] in AGENT_CONTAINERS:
                            self.assertEqual([m["name"] for m in at_sa_dir], [API_TOKEN_MASK_VOLUME], c["name"])
                            self.assertEqual(set(volumes[API_TOKEN_MASK_VOLUME]) - {"name"}, {"emptyDir"})
                            jwt = env_map(c)["CACERTS_AGENT_JWT_FILE"]
                            self.assertFalse(jwt.startswith(API_TOKEN_DIR), jwt)
                            self.assertTrue(any(m["name"] == TOKEN_VOLUME and jwt.startswith(m["mountPath"] + "/")
                                                for m in c["volumeMounts"]), jwt)
                        else:
                            self.assertEqual(at_sa_dir, [], f"{c['name']} must keep its API token")


class Helm4PluginTest(HelmRender):
    """kustomize/plugin.yaml: the same post-renderer as a Helm 4 plugin (Helm 4 takes a plugin
    name for --post-renderer), installed into an empty helm home by a real Helm 4."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.helm3 = cls.helm
        cls.helm = require_helm4()
        install = run([cls.helm, "plugin", "install", KUSTOMIZE_DIR], env=cls.env)
        if install.returncode != 0:
            raise AssertionError(f"helm plugin install failed: {install.stdout}{install.stderr}")

    def test_helm_4_lists_the_plugin(self):
        result = run([self.helm, "version", "--short"], env=self.env)
        self.assertTrue(result.stdout.startswith("v4."), result.stdout)
        result = run([self.helm, "plugin", "list"], env=self.env)
        self.assertRegex(result.stdout, r"cacerts-agent\s+0\.1\.0\s+postrenderer/v1")

    def test_the_plugin_renders_what_the_helm_3_script_renders(self):
        for version in CHART_VERSIONS:
            for variant in ("sidecar", "native-sidecar multiroot"):
                with self.subTest(chart=version, variant=variant):
                    args = [a for w in variant.split() for a in ("--post-renderer-args", w)]
                    by_plugin = self.render(version, "--post-renderer", "cacerts-agent", *args)
                    self.assertEqual(by_plugin.returncode, 0, by_plugin.stderr)
                    docs = load_docs(by_plugin.stdout)
                    [deployment] = self.patchedIstiods(docs)
                    self.assertKustomizePod(deployment, variant)
                    helm3 = run([self.helm3, "template", "istiod", chart_dir(version), "--namespace",
                                 "istio-system", "--post-renderer", POST_RENDER, *args], env=self.env)
                    self.assertEqual(helm3.returncode, 0, helm3.stderr)
                    self.assertEqual(sorted(map(str, docs)), sorted(map(str, load_docs(helm3.stdout))))

    def test_the_image_reaches_the_plugin_by_argument_and_environment(self):
        ref = "registry.example/cacerts-agent@sha256:" + "ab" * 32
        for args, env in ((["--post-renderer-args", "--image", "--post-renderer-args", ref], {}),
                          ([], {"CACERTS_AGENT_IMAGE": ref})):
            with self.subTest(args=args, env=env):
                argv = [self.helm, "template", "istiod", chart_dir("1.30.0"), "--namespace", "istio-system",
                        "--post-renderer", "cacerts-agent", *args]
                result = run(argv, env=dict(self.env, **env))
                self.assertEqual(result.returncode, 0, result.stderr)
                spec = pod_spec(self.patchedIstiods(load_docs(result.stdout))[0])
                self.assertEqual({c["image"] for c in spec["containers"] + spec["initContainers"]
                                  if c["name"] in AGENT_CONTAINERS}, {ref})

    def test_the_plugin_verifies_and_fails_closed(self):
        for version in CHART_VERSIONS:
            with self.subTest(chart=version):
                values = os.path.join(HELM_VALUES_DIR, VALUES_FILES["native-sidecar"])
                good = self.render(version, "-f", values, "--post-renderer", "cacerts-agent",
                                   "--post-renderer-args", "--verify")
                self.assertEqual(good.returncode, 0, good.stderr)
                bad = self.render(version, "--post-renderer", "cacerts-agent", "--post-renderer-args", "--verify")
                self.assertNotEqual(bad.returncode, 0)
                self.assertIn('plugin "cacerts-agent" exited with error', bad.stderr)


if __name__ == "__main__":
    run_tests()
