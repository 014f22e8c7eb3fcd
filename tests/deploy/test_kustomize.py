#!/usr/bin/python3
"""kustomize components and post-render.sh over istiod manifests rendered by the Istio chart."""

import sys

sys.dont_write_bytecode = True

import copy  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402

from deploy_support import (  # noqa: E402
    AGENT_CONTAINERS, COMPONENTS_DIR, CONFIGMAP, HELM_VALUES_DIR, KUSTOMIZE_DIR, MIGRATE_MOUNT, MIGRATE_VOLUME,
    MIGRATION_CONFIGMAP, POST_RENDER, VARIANTS,
    ContractAssertions, by_name, dump_docs, env_map, is_istiod_deployment, kustomize_with_components,
    load_docs, pod_spec, post_render, read_agent_env, schema_problems, read_testdata, read_yaml_file, require_kubectl, run,
    run_tests, strip_kustomize_changes)

def setUpModule():
    require_kubectl()


INPUTS = ("istiod-1.24-chart-full.yaml", "istiod-1.24-deployment.yaml", "istiod-1.30-deployment.yaml")


def renamed(docs, name, revision=None):
    """The 1.30 Deployment as a revisioned or release-prefixed install would name it."""
    out = copy.deepcopy(docs)
    for d in out:
        if is_istiod_deployment(d):
            d["metadata"]["name"] = name
            if revision:
                for labels in (d["metadata"]["labels"], d["spec"]["template"]["metadata"]["labels"]):
                    labels["istio.io/rev"] = revision
                d["spec"]["selector"]["matchLabels"] = {"app": "istiod", "istio.io/rev": revision}
    return out


class KustomizeComponentTest(ContractAssertions):
    """Each variant, applied by `kubectl kustomize` to real chart output."""

    def checkVariant(self, input_text, variant):
        before = load_docs(input_text)
        after = load_docs(kustomize_with_components(input_text, VARIANTS[variant]))
        originals = {d["metadata"]["name"]: d for d in before if is_istiod_deployment(d)}
        for deployment in self.patchedIstiods(after):
            self.assertKustomizePod(deployment, variant)
        strips = {name: strip_kustomize_changes(d) for name, d in originals.items()}
        self.assertOnlyIntendedChanges(before, after,
                                       lambda d: strips[d["metadata"]["name"]](d))
        return after

    def test_every_variant_patches_the_captured_istiod_manifests(self):
        for name in INPUTS:
            for variant in VARIANTS:
                with self.subTest(input=name, variant=variant):
                    self.checkVariant(read_testdata(name), variant)

    def test_the_full_chart_output_keeps_every_other_document(self):
        text = read_testdata("istiod-1.24-chart-full.yaml")
        after = self.checkVariant(text, "sidecar")
        kinds = sorted(d["kind"] for d in after)
        self.assertIn("MutatingWebhookConfiguration", kinds)
        self.assertEqual(len(after), len(load_docs(text)))
        self.assertGreater(len(after), 10)

    def test_a_revisioned_istiod_is_patched(self):
        docs = renamed(load_docs(read_testdata("istiod-1.30-deployment.yaml")), "istiod-canary", "canary")
        for variant in VARIANTS:
            with self.subTest(variant=variant):
                after = self.checkVariant(dump_docs(docs), variant)
                self.assertEqual([d["metadata"]["name"] for d in after if is_istiod_deployment(d)],
                                 ["istiod-canary"])

    def test_a_release_prefixed_istiod_is_patched(self):
        docs = renamed(load_docs(read_testdata("istiod-1.30-deployment.yaml")), "myrelease-istiod")
        after = self.checkVariant(dump_docs(docs), "sidecar")
        self.assertEqual([d["metadata"]["name"] for d in after if is_istiod_deployment(d)],
                         ["myrelease-istiod"])

    def test_two_istiod_revisions_in_one_stream_are_both_patched(self):
        base = load_docs(read_testdata("istiod-1.30-deployment.yaml"))
        docs = base + renamed(base, "istiod-canary", "canary")
        after = self.checkVariant(dump_docs(docs), "native-sidecar")
        self.assertEqual(len(self.patchedIstiods(after)), 2)

    def test_a_deployment_without_the_istiod_label_is_left_alone(self):
        docs = load_docs(read_testdata("istiod-1.30-deployment.yaml"))
        docs[0]["metadata"]["labels"]["app"] = "something-else"
        text = dump_docs(docs)
        self.assertEqual(load_docs(kustomize_with_components(text, ["sidecar"])), docs)

    def test_contract_checks_fail_on_unpatched_output(self):
        # The assertions above must not be able to pass when the patch matched nothing.
        docs = load_docs(read_testdata("istiod-1.24-chart-full.yaml"))
        with self.assertRaises(AssertionError):
            self.patchedIstiods(docs)
        deployment = next(d for d in docs if is_istiod_deployment(d))
        for variant in VARIANTS:
            with self.subTest(variant=variant), self.assertRaises(AssertionError):
                self.assertKustomizePod(deployment, variant)

    def test_multiroot_without_its_variant_is_caught(self):
        # Listing multiroot for the wrong variant leaves an agent container without an image.
        out = load_docs(kustomize_with_components(read_testdata("istiod-1.30-deployment.yaml"),
                                                  ["native-sidecar", "multiroot"]))
        with self.assertRaises(AssertionError):
            self.assertKustomizePod(out[0], "native-sidecar multiroot")


class PostRenderTest(ContractAssertions):
    """kustomize/post-render.sh as Helm and istioctl users run it."""

    def test_post_render_output_equals_direct_kustomize(self):
        for name in INPUTS:
            text = read_testdata(name)
            for variant, components in VARIANTS.items():
                with self.subTest(input=name, variant=variant):
                    result = post_render(text, variant.split())
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertEqual(result.stdout, kustomize_with_components(text, components))
                    self.assertKustomizePod(self.patchedIstiods(load_docs(result.stdout))[0], variant)

    def test_the_default_variant_is_the_sidecar_pair(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        result = post_render(text)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, kustomize_with_components(text, ["sidecar"]))

    def test_works_from_any_directory_and_through_a_symlink(self):
        text = read_testdata("istiod-1.24-deployment.yaml")
        expected = kustomize_with_components(text, ["sidecar"])
        with tempfile.TemporaryDirectory() as tmp:
            link = os.path.join(tmp, "renderer")
            os.symlink(POST_RENDER, link)
            result = run([link], input=text, cwd=tmp)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, expected)
            result = run([POST_RENDER], input=text, cwd="/")
            self.assertEqual(result.stdout, expected)

    def test_temporary_files_are_removed_on_success_and_failure(self):
        text = read_testdata("istiod-1.24-deployment.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, TMPDIR=tmp)
            self.assertEqual(post_render(text, env=env).returncode, 0)
            self.assertEqual(os.listdir(tmp), [])
            self.assertNotEqual(post_render("kind: [unbalanced", env=env).returncode, 0)
            self.assertEqual(os.listdir(tmp), [])
            self.assertNotEqual(post_render(text, ["bogus"], env=env).returncode, 0)
            self.assertEqual(os.listdir(tmp), [])

    def test_fails_loudly_when_nothing_was_patched(self):
        docs = load_docs(read_testdata("istiod-1.24-chart-full.yaml"))
        without = dump_docs([d for d in docs if not is_istiod_deployment(d)])
        relabelled = load_docs(read_testdata("istiod-1.30-deployment.yaml"))
        relabelled[0]["metadata"]["labels"]["app"] = "pilot"
        for text in (without, dump_docs(relabelled), ""):
            with self.subTest(text=text[:40]):
                result = post_render(text)
                self.assertEqual(result.returncode, 1)
                self.assertEqual(result.stdout, "")
                self.assertIn("post-render.sh:", result.stderr)

    def test_rejects_bad_arguments(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        for args in (["bogus"], ["sidecar", "native-sidecar"], ["init-only", "multiroot"]):
            with self.subTest(args=args):
                result = post_render(text, args)
                self.assertEqual(result.returncode, 2)
                self.assertEqual(result.stdout, "")
                self.assertIn(args[-1], result.stderr)

    def test_fails_loudly_without_kubectl_or_kustomize(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            # Everything the script uses except kubectl and kustomize.
            for tool in ("bash", "cat", "cp", "dirname", "grep", "mktemp", "readlink", "rm", "sed"):
                path = run(["sh", "-c", f"command -v {tool}"]).stdout.strip()
                self.assertTrue(path, tool)
                os.symlink(path, os.path.join(tmp, tool))
            result = run([os.path.join(tmp, "bash"), POST_RENDER], input=text, env={"PATH": tmp})
            self.assertEqual(result.returncode, 127)
            self.assertIn("kubectl", result.stderr)
            self.assertEqual(result.stdout, "")


DIGEST = "sha256:" + "0123456789abcdef" * 4


def istiod_of(docs):
    return next(d for d in docs if is_istiod_deployment(d))


def container(docs, name):
    spec = pod_spec(istiod_of(docs))
    return by_name(spec["containers"] + (spec.get("initContainers") or []))[name]


class VerifyTest(unittest.TestCase):
    """post-render.sh --verify: every way the wiring can be wrong is refused and named."""

    def patched(self, variant, name="istiod-1.30-deployment.yaml"):
        return load_docs(kustomize_with_components(read_testdata(name), VARIANTS[variant]))

    def verify(self, docs):
        return post_render(dump_docs(docs) if isinstance(docs, list) else docs, ["--verify"])

    def test_every_variant_passes_through_unchanged(self):
        for name in INPUTS:
            for variant, components in VARIANTS.items():
                with self.subTest(input=name, variant=variant):
                    text = kustomize_with_components(read_testdata(name), components)
                    result = self.verify(text)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertEqual(result.stdout, text)

    def test_each_broken_wiring_is_refused_with_its_reason(self):
        def volume(docs, name):
            return by_name(pod_spec(istiod_of(docs))["volumes"])[name]

        def mount(docs, c, volume_name):
            return by_name(container(docs, c)["volumeMounts"])[volume_name]

        def drop_init(docs):
            pod_spec(istiod_of(docs)).pop("initContainers")

        def set_env(docs, c, key, value):
            container(docs, c)["env"].append({"name": key, "value": value})

        cases = [
            ("sidecar", lambda d: volume(d, "cacerts").update(secret={"secretName": "cacerts"}),
             "has source(s) emptyDir,secret,"),
            ("sidecar", lambda d: volume(d, "cacerts")["emptyDir"].pop("medium"), "not medium: Memory"),
            ("sidecar", drop_init, "no agent init container"),
            ("native-sidecar", lambda d: container(d, "cacerts-agent").pop("restartPolicy"),
             "without restartPolicy: Always"),
            ("native-sidecar", lambda d: container(d, "cacerts-agent").pop("startupProbe"), "no startupProbe"),
            ("init-only", lambda d: container(d, "discovery")["volumeMounts"].remove(mount(d, "discovery", "cacerts")),
             "discovery mounts nothing at its CA directory /etc/cacerts"),
            ("init-only", lambda d: mount(d, "discovery", "cacerts").update(readOnly=False),
             "discovery mounts cacerts at /etc/cacerts read-write"),
            ("init-only", lambda d: mount(d, "cacerts-init", "cacerts").update(readOnly=True),
             "cacerts-init mounts cacerts at /etc/cacerts read-only"),
            ("init-only", lambda d: set_env(d, "discovery", "ROOT_CA_DIR", "/var/run/elsewhere"),
             "discovery mounts nothing at its CA directory /var/run/elsewhere"),
            ("init-only", lambda d: container(d, "discovery")["env"].append(
                {"name": "ROOT_CA_DIR", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}),
             "ROOT_CA_DIR of discovery comes from valueFrom"),
            ("sidecar", lambda d: mount(d, "cacerts-agent", "cacerts").update(mountPath="/tmp/ca"),
             "cacerts-agent writes /etc/cacerts but does not mount volume cacerts"),
            ("sidecar", lambda d: container(d, "cacerts-init").update(args=["check"]), "runs check, not init or sidecar"),
        ]
        for variant, breakage, reason in cases:
            with self.subTest(variant=variant, reason=reason):
                docs = self.patched(variant)
                breakage(docs)
                result = self.verify(docs)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertEqual(result.stdout, "")
                self.assertIn("post-render.sh: verify: istio-system/istiod: ", result.stderr)
                self.assertIn(reason, result.stderr)

    def test_custom_resources_comments_and_empty_documents_pass_through(self):
        # `helm get manifest` and istioctl output: "# Source:" comments, CRs kubectl has no
        # type for, empty documents.
        text = kustomize_with_components(read_testdata("istiod-1.30-deployment.yaml"), ["sidecar"]) + (
            "---\n# Source: istiod/templates/gateway.yaml\napiVersion: networking.istio.io/v1\n"
            "kind: Gateway\nmetadata:\n  name: gw\nspec:\n  selector:\n    istio: ingressgateway\n"
            "---\n# Source: istiod/templates/empty.yaml\n")
        result = self.verify(text)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, text)

    def test_one_bad_revision_fails_the_stream_and_is_named(self):
        good = self.patched("native-sidecar")
        bad = renamed(load_docs(read_testdata("istiod-1.30-deployment.yaml")), "istiod-canary", "canary")
        result = self.verify(good + bad)
        self.assertEqual(result.returncode, 1)
        self.assertIn("istio-system/istiod-canary:", result.stderr)
        self.assertNotIn("istio-system/istiod:", result.stderr)

    def test_input_without_istiod_fails(self):
        docs = [d for d in load_docs(read_testdata("istiod-1.24-chart-full.yaml")) if not is_istiod_deployment(d)]
        for text in (dump_docs(docs), ""):
            result = self.verify(text)
            self.assertEqual(result.returncode, 1)
            self.assertEqual(result.stdout, "")

    def test_an_exported_image_does_not_stop_verify(self):
        text = kustomize_with_components(read_testdata("istiod-1.30-deployment.yaml"), ["sidecar"])
        result = post_render(text, ["--verify"], env=dict(os.environ, CACERTS_AGENT_IMAGE="registry.example/a:1"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, text)

    def test_verify_takes_no_patch_arguments(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        for args in (["--verify", "sidecar"], ["multiroot", "--verify"], ["--verify", "--image", "x/y:1"]):
            with self.subTest(args=args):
                result = post_render(text, args)
                self.assertEqual(result.returncode, 2)
                self.assertIn("--verify", result.stderr)


class ImageTest(unittest.TestCase):
    """The agent image on the post-renderer path: --image REF or $CACERTS_AGENT_IMAGE."""

    def images(self, args=(), env=None):
        result = post_render(read_testdata("istiod-1.30-deployment.yaml"), args,
                             env=dict(os.environ, **(env or {})))
        self.assertEqual(result.returncode, 0, result.stderr)
        spec = pod_spec(istiod_of(load_docs(result.stdout)))
        return {c["name"]: c["image"] for c in spec["containers"] + spec["initContainers"]
                if c["name"].startswith("cacerts-")}

    def test_image_by_digest_tag_or_both_reaches_every_agent_container(self):
        for ref in ("registry.example:5000/team/cacerts-agent@" + DIGEST,
                    "registry.example/cacerts-agent:0.2.0",
                    "registry.example/cacerts-agent:0.2.0@" + DIGEST):
            with self.subTest(ref=ref):
                self.assertEqual(self.images(["--image", ref]), {"cacerts-init": ref, "cacerts-agent": ref})
                self.assertEqual(self.images(["native-sidecar", f"--image={ref}"]), {"cacerts-agent": ref})

    def test_the_environment_sets_the_image_and_the_flag_wins(self):
        ref = "registry.example/cacerts-agent@" + DIGEST
        self.assertEqual(set(self.images(env={"CACERTS_AGENT_IMAGE": ref}).values()), {ref})
        self.assertEqual(set(self.images(["--image", "other.example/agent:1"],
                                         env={"CACERTS_AGENT_IMAGE": ref}).values()), {"other.example/agent:1"})

    def test_a_users_kustomization_pins_the_image_by_digest(self):
        # docs/install.md, "The image": images: [{name, newName, digest}] beside the components.
        with tempfile.TemporaryDirectory(prefix="cacerts-images-") as tmp:
            with open(os.path.join(tmp, "istiod.yaml"), "w", encoding="utf-8") as f:
                f.write(read_testdata("istiod-1.30-deployment.yaml"))
            with open(os.path.join(tmp, "kustomization.yaml"), "w", encoding="utf-8") as f:
                f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                        "resources:\n- istiod.yaml\ncomponents:\n"
                        f"- {os.path.relpath(os.path.join(COMPONENTS_DIR, 'sidecar'), tmp)}\n"
                        "images:\n- name: ghcr.io/cacerts-agent/cacerts-agent\n"
                        f"  newName: registry.example/cacerts-agent\n  digest: {DIGEST}\n")
            result = run(["kubectl", "kustomize", tmp])
        self.assertEqual(result.returncode, 0, result.stderr)
        spec = pod_spec(istiod_of(load_docs(result.stdout)))
        self.assertEqual({c["image"] for c in spec["containers"] + spec["initContainers"]
                          if c["name"] in AGENT_CONTAINERS}, {"registry.example/cacerts-agent@" + DIGEST})
        self.assertEqual(by_name(spec["containers"])["discovery"]["image"],
                         pod_spec(load_docs(read_testdata("istiod-1.30-deployment.yaml"))[0])["containers"][0]["image"])

    def test_bad_references_are_refused(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        for args in (["--image"], ["--image", "Registry/UPPER"], ["--image", "x/y@sha256:short"],
                     ["--image", "x/y:tag with space"]):
            with self.subTest(args=args):
                result = post_render(text, args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, "")


class SchemaTest(ContractAssertions):
    """The schema validator and the semantic checks that every render goes through
    (ContractAssertions.patchedIstiods) catch what they claim to."""

    def patched(self, variant="sidecar"):
        return load_docs(kustomize_with_components(read_testdata("istiod-1.24-chart-full.yaml"), VARIANTS[variant]))

    def test_the_inputs_and_the_shipped_manifests_are_schema_valid(self):
        for name in INPUTS:
            with self.subTest(input=name):
                self.assertSchemaValid(load_docs(read_testdata(name)))
        self.assertSchemaValid([read_yaml_file(os.path.join(HELM_VALUES_DIR, "networkpolicy-agent-metrics.yaml"))])

    def test_schema_errors_are_found(self):
        cases = [
            (lambda d: istiod_of(d)["spec"].update(replicas="two"), "/spec/replicas must be integer"),
            (lambda d: container(d, "cacerts-init").pop("name"), "initContainers/0 must have required property name"),
            (lambda d: container(d, "cacerts-agent")["ports"][0].update(containerPort="http"),
             "containerPort must be integer"),
            (lambda d: d.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
             "no schema for example.com/v1 Widget"),
        ]
        for breakage, reason in cases:
            with self.subTest(reason=reason):
                docs = self.patched()
                breakage(docs)
                problems = schema_problems(docs)
                self.assertTrue(any(reason in p for p in problems), problems)

    def test_semantic_errors_the_schemas_miss_are_found(self):
        def volume(d, name):
            return by_name(pod_spec(istiod_of(d))["volumes"])[name]
        cases = [
            # Both sources on one volume: schema-valid, rejected by the API server.
            lambda d: volume(d, "cacerts").update(secret={"secretName": "cacerts"}),
            lambda d: container(d, "cacerts-agent")["volumeMounts"].append({"name": "nope", "mountPath": "/nope"}),
            lambda d: container(d, "cacerts-agent")["livenessProbe"]["httpGet"].update(port="metrics"),
            lambda d: by_name(container(d, "cacerts-init")["volumeMounts"])["cacerts"].update(readOnly=True),
            lambda d: pod_spec(istiod_of(d)).pop("initContainers"),
            lambda d: container(d, "discovery")["env"].append({"name": "ROOT_CA_DIR", "value": "/var/run/secrets/istio-dns"}),
        ]
        for i, breakage in enumerate(cases):
            with self.subTest(case=i):
                docs = self.patched()
                breakage(docs)
                self.assertEqual(schema_problems(docs), [], "the schemas alone accept it")
                with self.assertRaises(AssertionError):
                    self.assertPodSemantics(istiod_of(docs))


class SingleSourceTest(ContractAssertions):
    """The agent containers of every variant and of the Helm values files agree, so the install
    paths cannot drift apart."""

    def kustomizeAgents(self):
        """name -> container, from the component files as written."""
        native = read_yaml_file(os.path.join(COMPONENTS_DIR, "native-sidecar", "native-sidecar.yaml"))
        init = read_yaml_file(os.path.join(COMPONENTS_DIR, "init-only", "init-container.yaml"))
        sidecar = read_yaml_file(os.path.join(COMPONENTS_DIR, "sidecar", "sidecar-container.yaml"))
        self.assertEqual([op["op"] for op in sidecar], ["add"])
        return {
            "native": pod_spec(native)["initContainers"][0],
            "init": pod_spec(init)["initContainers"][0],
            "sidecar": sidecar[0]["value"],
        }

    def valuesAgents(self):
        """The `pilot` values of each file: the chart copies them over the top-level ones
        (templates/zzy_descope_legacy.yaml), so they win over a user's top-level lists."""
        native = read_yaml_file(os.path.join(HELM_VALUES_DIR, "values-native-sidecar.yaml"))
        init = read_yaml_file(os.path.join(HELM_VALUES_DIR, "values-init-only.yaml"))
        for values in (native, init):
            self.assertEqual(list(values), ["pilot"])
        return native["pilot"], init["pilot"]

    def test_values_files_configure_the_agent_like_the_kustomize_patch(self):
        agents = self.kustomizeAgents()
        native_values, init_values = self.valuesAgents()
        for values, ours in ((native_values, agents["native"]), (init_values, agents["init"])):
            with self.subTest(container=ours["name"]):
                self.assertEqual(len(values["initContainers"]), 1)
                theirs = values["initContainers"][0]
                self.assertEqual(as_kustomize_dir(theirs), ours)

    def test_values_files_define_the_agent_volumes_like_the_kustomize_patch(self):
        patch = read_yaml_file(os.path.join(COMPONENTS_DIR, "agent-volumes", "volumes.yaml"))
        ours = by_name(pod_spec(patch)["volumes"])
        for values in self.valuesAgents():
            theirs = by_name(values["volumes"])
            for name in ("cacerts-agent-vault-token", "cacerts-agent-vault-ca", "cacerts-agent-no-api-token"):
                self.assertEqual(theirs[name], ours[name])
            expected_dir = dict(ours["cacerts"], name="cacerts-memory")
            del expected_dir["secret"]
            self.assertEqual(theirs["cacerts-memory"], expected_dir)
            self.assertEqual(values["env"], {"ROOT_CA_DIR": "/var/run/secrets/istiod/cacerts"})
            self.assertEqual(values["volumeMounts"], [{
                "name": "cacerts-memory", "mountPath": "/var/run/secrets/istiod/cacerts",
                "readOnly": True}])

    def test_the_sidecar_runs_like_the_native_sidecar_and_the_init_container(self):
        agents = self.kustomizeAgents()
        native = dict(agents["native"])
        self.assertEqual(native.pop("restartPolicy"), "Always")
        native.pop("startupProbe")
        self.assertEqual(agents["sidecar"], native)
        init = agents["init"]
        for key in ("image", "envFrom", "resources", "securityContext", "volumeMounts"):
            self.assertEqual(init[key], native[key], key)
        native_env = env_map(native)
        for key, value in env_map(init).items():
            self.assertEqual(native_env[key], value, key)
        self.assertEqual(init["args"], ["init"])
        self.assertEqual(native["args"], ["sidecar"])


def as_kustomize_dir(container):
    """A values-file container with its CA directory moved back to /etc/cacerts, without the
    values files' CACERTS_INSTALLED_BY guard."""
    c = copy.deepcopy(container)
    c["env"] = [e for e in c["env"] if e["name"] != "CACERTS_INSTALLED_BY"]
    for e in c["env"]:
        if e["name"] == "CACERTS_AGENT_DIR":
            e["value"] = "/etc/cacerts"
    for m in c["volumeMounts"]:
        if m["name"] == "cacerts-memory":
            m["name"], m["mountPath"] = "cacerts", "/etc/cacerts"
    return c


class AgentConfigMapTest(unittest.TestCase):
    """The agent's configuration users edit (kustomize/config/{kv,pki}/agent.env), generated
    into a ConfigMap with a content hash in its name."""

    # Set on the containers themselves; a ConfigMap value would be silently overridden.
    kContainerOwned = {"CACERTS_AGENT_DIR", "CACERTS_AGENT_JWT_FILE", "VAULT_CACERT",
                       "CACERTS_AGENT_LISTEN", "CACERTS_AGENT_ISTIOD_METRICS_URL",
                       "CACERTS_AGENT_ISTIOD_MULTIROOT"}

    def build(self, source, variant="native-sidecar", config_dir=None):
        """(ConfigMap, istiod Deployment) of the variant plus the config component."""
        config_dir = config_dir or os.path.join(KUSTOMIZE_DIR, "config", source)
        with tempfile.TemporaryDirectory(prefix="cacerts-config-") as tmp:
            with open(os.path.join(tmp, "istiod.yaml"), "w", encoding="utf-8") as f:
                f.write(read_testdata("istiod-1.30-deployment.yaml"))
            components = [os.path.relpath(os.path.join(COMPONENTS_DIR, c), tmp) for c in VARIANTS[variant]]
            components.append(os.path.relpath(config_dir, tmp))
            with open(os.path.join(tmp, "kustomization.yaml"), "w", encoding="utf-8") as f:
                f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                        "resources:\n- istiod.yaml\ncomponents:\n" + "".join(f"- {c}\n" for c in components))
            result = run(["kubectl", "kustomize", tmp])
        self.assertEqual(result.returncode, 0, result.stderr)
        docs = load_docs(result.stdout)
        [cm] = [d for d in docs if d["kind"] == "ConfigMap"]
        [deployment] = [d for d in docs if is_istiod_deployment(d)]
        return cm, deployment

    def data(self, source):
        cm, _ = self.build(source)
        return cm["data"]

    def test_the_configmap_has_a_hash_suffix_that_the_agent_containers_follow(self):
        for source in ("kv", "pki"):
            for variant in ("sidecar", "native-sidecar", "init-only"):
                with self.subTest(source=source, variant=variant):
                    cm, deployment = self.build(source, variant)
                    self.assertEqual(cm["metadata"]["namespace"], "istio-system")
                    self.assertRegex(cm["metadata"]["name"], r"^cacerts-agent-[a-z0-9]{10}$")
                    self.assertEqual(cm["data"], read_agent_env(source))
                    spec = pod_spec(deployment)
                    agents = [c for c in spec["containers"] + spec["initContainers"] if c["name"] in AGENT_CONTAINERS]
                    self.assertTrue(agents)
                    for c in agents:
                        self.assertEqual(c["envFrom"][0], {"configMapRef": {"name": cm["metadata"]["name"]}})

    def test_a_config_change_rolls_istiod(self):
        cm, deployment = self.build("pki")
        with tempfile.TemporaryDirectory(prefix="cacerts-config-edit-") as tmp:
            edited = os.path.join(tmp, "pki")
            shutil.copytree(os.path.join(KUSTOMIZE_DIR, "config", "pki"), edited)
            with open(os.path.join(edited, "agent.env"), "a", encoding="utf-8") as f:
                f.write("CACERTS_AGENT_COMMON_NAME=istiod cluster2\n")
            cm2, deployment2 = self.build("pki", config_dir=edited)
        self.assertNotEqual(cm2["metadata"]["name"], cm["metadata"]["name"])
        self.assertEqual(cm2["data"]["CACERTS_AGENT_COMMON_NAME"], "istiod cluster2")
        # A new pod template: the Deployment rolls.
        self.assertNotEqual(deployment2["spec"]["template"], deployment["spec"]["template"])

    def test_post_render_generates_the_same_configmap(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        result = post_render(text, ["native-sidecar", "--config", os.path.join(KUSTOMIZE_DIR, "config", "kv")])
        self.assertEqual(result.returncode, 0, result.stderr)
        cm, deployment = self.build("kv")
        self.assertEqual(sorted(map(str, load_docs(result.stdout))), sorted(map(str, [cm, deployment])))
        bad = post_render(text, ["--config", COMPONENTS_DIR])
        self.assertEqual(bad.returncode, 2)

    def test_the_unhashed_configmap_for_the_values_path(self):
        # docs/install.md: kubectl create configmap --from-env-file, offline with --dry-run=client.
        for source in ("kv", "pki"):
            with self.subTest(source=source):
                result = run(["kubectl", "create", "configmap", CONFIGMAP, "-n", "istio-system", "--from-env-file",
                              os.path.join(KUSTOMIZE_DIR, "config", source, "agent.env"),
                              "--dry-run=client", "-o", "yaml"])
                self.assertEqual(result.returncode, 0, result.stderr)
                cm = load_docs(result.stdout)[0]
                self.assertEqual(cm["metadata"]["name"], CONFIGMAP)
                self.assertEqual(cm["data"], read_agent_env(source))

    def test_kv_config_names_the_kv_fields(self):
        data = self.data("kv")
        self.assertEqual(data["CACERTS_AGENT_SOURCE"], "kv")
        for key in ("CACERTS_AGENT_KV_CERT", "CACERTS_AGENT_KV_KEY", "CACERTS_AGENT_KV_CHAIN",
                    "CACERTS_AGENT_KV_ROOT"):
            self.assertRegex(data[key], r"^vault:[^#]+#[a-z-]+$", key)
        self.assertFalse([k for k in data if k.startswith("CACERTS_AGENT_PKI_")])

    def test_pki_config_names_the_sign_path(self):
        data = self.data("pki")
        self.assertEqual(data["CACERTS_AGENT_SOURCE"], "pki")
        self.assertTrue(data["CACERTS_AGENT_PKI_SIGN_PATH"].endswith("/sign-intermediate"))
        self.assertFalse([k for k in data if k.startswith("CACERTS_AGENT_KV_")])

    def test_configs_hold_only_user_settings_as_strings(self):
        for source in ("kv", "pki"):
            with self.subTest(source=source):
                data = self.data(source)
                self.assertFalse(set(data) & self.kContainerOwned)
                self.assertTrue(all(isinstance(v, str) for v in data.values()))
                self.assertTrue(data["VAULT_ADDR"].startswith("https://"))
                for key in ("CACERTS_AGENT_AUTH_METHOD", "CACERTS_AGENT_AUTH_MOUNT",
                            "CACERTS_AGENT_AUTH_ROLE", "CACERTS_AGENT_LAYOUT"):
                    self.assertIn(key, data)
                # No trailing comments: everything after "=" would be the value.
                self.assertFalse([k for k, v in data.items() if "#" in v and not k.startswith("CACERTS_AGENT_KV_")])



class MigrationComponentTest(ContractAssertions):
    """migrate-from-*: with every variant, the old CA's Secret replaces the placeholder volume
    that only the agent containers mount, and every replica reads the switch instant from one
    generated ConfigMap (docs/migration.md)."""

    LAYOUTS = {"migrate-from-istio-ca-secret": "istio-ca-secret", "migrate-from-cacerts": "cacerts"}
    AGENTS_OF = {"sidecar": ["cacerts-agent", "cacerts-init"], "native-sidecar": ["cacerts-agent"],
                 "init-only": ["cacerts-init"]}

    def rendered(self, variant, component, name="istiod-1.30-deployment.yaml"):
        return load_docs(kustomize_with_components(read_testdata(name), [*VARIANTS[variant], component]))

    def test_every_variant_mounts_the_old_secret_read_only_into_its_agent_containers_only(self):
        for variant, agents in self.AGENTS_OF.items():
            for component, secret in self.LAYOUTS.items():
                for name in ("istiod-1.24-deployment.yaml", "istiod-1.30-deployment.yaml"):
                    with self.subTest(variant=variant, component=component, input=name):
                        docs = self.rendered(variant, component, name)
                        spec = pod_spec(istiod_of(docs))
                        volume = by_name(spec["volumes"])[MIGRATE_VOLUME]
                        self.assertEqual(volume, {"name": MIGRATE_VOLUME, "secret": {"secretName": secret}})
                        mounted_by = {}
                        for c in spec["containers"] + (spec.get("initContainers") or []):
                            for m in c.get("volumeMounts") or []:
                                if m["name"] == MIGRATE_VOLUME:
                                    mounted_by[c["name"]] = m
                        self.assertEqual(sorted(mounted_by), agents)
                        for m in mounted_by.values():
                            self.assertEqual(m, {"name": MIGRATE_VOLUME, "mountPath": MIGRATE_MOUNT, "readOnly": True})
                        # istiod itself never sees the old key.
                        self.assertNotIn("discovery", mounted_by)
                        self.assertKustomizePod(istiod_of(docs), variant)
                        self.assertPodSemantics(istiod_of(docs))
                        self.assertSchemaValid(docs)

    def test_without_a_migration_the_placeholder_is_empty_and_the_settings_absent(self):
        for variant in self.AGENTS_OF:
            with self.subTest(variant=variant):
                docs = load_docs(kustomize_with_components(read_testdata("istiod-1.30-deployment.yaml"),
                                                           VARIANTS[variant]))
                self.assertEqual(by_name(pod_spec(istiod_of(docs))["volumes"])[MIGRATE_VOLUME], {
                    "name": MIGRATE_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}})
                self.assertFalse([d for d in docs if d.get("kind") == "ConfigMap"])
                for name in self.AGENTS_OF[variant]:
                    self.assertEqual(container(docs, name)["envFrom"][1], {"configMapRef": {
                        "name": MIGRATION_CONFIGMAP, "optional": True}})

    def test_every_agent_container_reads_both_settings_from_one_hashed_configmap(self):
        for variant, agents in self.AGENTS_OF.items():
            for component in self.LAYOUTS:
                with self.subTest(variant=variant, component=component):
                    docs = self.rendered(variant, component)
                    maps = [d for d in docs if d.get("kind") == "ConfigMap"
                            and d["metadata"]["name"].startswith(MIGRATION_CONFIGMAP + "-")]
                    self.assertEqual(len(maps), 1)
                    self.assertEqual(maps[0]["metadata"]["namespace"], "istio-system")
                    data = maps[0]["data"]
                    self.assertEqual(set(data), {"CACERTS_AGENT_MIGRATE_FROM", "CACERTS_AGENT_MIGRATE_SWITCH_AT"})
                    self.assertEqual(data["CACERTS_AGENT_MIGRATE_FROM"], MIGRATE_MOUNT)
                    # The placeholder instant never switches: nothing happens until it is set.
                    self.assertEqual(data["CACERTS_AGENT_MIGRATE_SWITCH_AT"], "2099-01-01T00:00:00Z")
                    for name in agents:
                        c = container(docs, name)
                        self.assertEqual(c["envFrom"][1], {"configMapRef": {
                            "name": maps[0]["metadata"]["name"], "optional": True}})
                        # The variant's own settings are untouched.
                        self.assertEqual(env_map(c)["CACERTS_AGENT_DIR"], "/etc/cacerts")
                    discovery = container(docs, "discovery")
                    self.assertNotIn("envFrom", discovery)
                    self.assertNotIn("CACERTS_AGENT_MIGRATE_FROM", env_map(discovery))

    def test_post_render_migrates_every_variant_with_the_switch_instant_given(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        for variant in self.AGENTS_OF:
            for component, secret in self.LAYOUTS.items():
                with self.subTest(variant=variant, component=component):
                    result = post_render(text, [variant, component, "--migrate-switch-at", "2026-12-10T09:00:00Z"])
                    self.assertEqual(result.returncode, 0, result.stderr)
                    docs = load_docs(result.stdout)
                    spec = pod_spec(istiod_of(docs))
                    self.assertEqual(by_name(spec["volumes"])[MIGRATE_VOLUME]["secret"], {"secretName": secret})
                    [cm] = [d for d in docs if d.get("kind") == "ConfigMap"
                            and d["metadata"]["name"].startswith(MIGRATION_CONFIGMAP + "-")]
                    self.assertEqual(cm["data"]["CACERTS_AGENT_MIGRATE_SWITCH_AT"], "2026-12-10T09:00:00Z")
                    self.assertEqual(cm["data"]["CACERTS_AGENT_MIGRATE_FROM"], MIGRATE_MOUNT)
                    # The same as the components listed by hand, apart from the instant.
                    by_hand = kustomize_with_components(text, [*VARIANTS[variant], component])

                    def normalised(out, instant):
                        return re.sub(MIGRATION_CONFIGMAP + r"-[a-z0-9]{10}", "CM", out).replace(instant, "T")
                    self.assertEqual(normalised(result.stdout, "2026-12-10T09:00:00Z"),
                                     normalised(by_hand, "2099-01-01T00:00:00Z"))
                    # Another instant is another ConfigMap name, so istiod rolls.
                    other = post_render(text, [variant, component, "--migrate-switch-at=2026-12-11T09:00:00+01:00"])
                    self.assertEqual(other.returncode, 0, other.stderr)
                    self.assertNotIn(cm["metadata"]["name"], other.stdout)
        # The components' files are left as they were.
        with open(os.path.join(COMPONENTS_DIR, "migrate-from-istio-ca-secret", "migration.env"), encoding="utf-8") as f:
            self.assertIn("CACERTS_AGENT_MIGRATE_SWITCH_AT=2099-01-01T00:00:00Z\n", f.read())

    def test_post_render_refuses_bad_migration_arguments_before_reading_anything(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        for args, words in (
                (["--migrate-switch-at", "2026-12-10T09:00:00Z"], "needs migrate-from"),
                (["migrate-from-cacerts", "--migrate-switch-at", "2026-12-10"], "not an RFC 3339 instant"),
                (["migrate-from-cacerts", "--migrate-switch-at", "tomorrow"], "not an RFC 3339 instant"),
                (["migrate-from-cacerts", "migrate-from-istio-ca-secret"], "choose one old CA"),
                (["migrate-from-cacerts", "--migrate-switch-at"], "needs a value"),
                (["--verify", "migrate-from-cacerts"], "takes no variant")):
            with self.subTest(args=args):
                result = post_render(text, args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(words, result.stderr)
                self.assertEqual(result.stdout, "")

    def test_post_render_verify_accepts_the_migration_and_names_each_miswiring(self):
        text = read_testdata("istiod-1.30-deployment.yaml")
        for variant in self.AGENTS_OF:
            for component in self.LAYOUTS:
                with self.subTest(variant=variant, component=component):
                    wired = kustomize_with_components(text, [*VARIANTS[variant], component])
                    result = post_render(wired, ["--verify"])
                    self.assertEqual(result.returncode, 0, result.stderr)
        # Listed before the variant, the component leaves the placeholder's emptyDir beside the
        # Secret: a volume Kubernetes rejects, named with the fix.
        wrong_order = kustomize_with_components(text, ["migrate-from-cacerts", *VARIANTS["sidecar"]])
        result = post_render(wrong_order, ["--verify"])
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"volume {MIGRATE_VOLUME} has several sources (emptyDir,secret,); "
                      "a migrate-from-* component must come after the variant", result.stderr)
        # The old key mounted into istiod itself.
        docs = self.rendered("sidecar", "migrate-from-istio-ca-secret")
        discovery = container(docs, "discovery")
        discovery["volumeMounts"].append({"name": MIGRATE_VOLUME, "mountPath": "/old", "readOnly": True})
        result = post_render(dump_docs(docs), ["--verify"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("discovery mounts cacerts-agent-migrate-from (the old CA of a migration); "
                      "only the agent containers may", result.stderr)


if __name__ == "__main__":
    run_tests()
