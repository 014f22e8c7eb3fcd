"""Shared helpers for the deployment tests.

Paths come from the environment that tests.cmake sets (CACERTS_SOURCE_DIR, CACERTS_BUILD_DIR,
CACERTS_ISTIO_TESTDATA); the pod contract every install path must satisfy is asserted by
ContractAssertions. Runs on Debian's /usr/bin/python3 with python3-yaml.
"""

import copy
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

SOURCE_DIR = os.path.abspath(
    os.environ.get("CACERTS_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("CACERTS_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
DEPLOY_CACHE_DIR = os.path.join(BUILD_DIR, "deploy")
KUSTOMIZE_DIR = os.path.join(SOURCE_DIR, "kustomize")
COMPONENTS_DIR = os.path.join(KUSTOMIZE_DIR, "components")
POST_RENDER = os.path.join(KUSTOMIZE_DIR, "post-render.sh")
HELM_VALUES_DIR = os.path.join(SOURCE_DIR, "helm")

IMAGE = "ghcr.io/cacerts-agent/cacerts-agent:0.1.0"
CONFIGMAP = "cacerts-agent"
VAULT_CA_CONFIGMAP = "cacerts-agent-vault-ca"
TOKEN_VOLUME = "cacerts-agent-vault-token"
VAULT_CA_VOLUME = "cacerts-agent-vault-ca"
TOKEN_MOUNT = "/var/run/secrets/vault"
VAULT_CA_MOUNT = "/etc/cacerts-agent/vault-ca"
# The kustomize patch keeps istiod's /etc/cacerts; the values-only install adds this one.
KUSTOMIZE_CA_DIR = "/etc/cacerts"
VALUES_CA_DIR = "/var/run/secrets/istiod/cacerts"
VALUES_CA_VOLUME = "cacerts-memory"
METRICS_PORT_NAME = "http-metrics"
METRICS_PORT = 9797
AGENT_CONTAINERS = ("cacerts-init", "cacerts-agent")
# An empty volume over the service-account mount point keeps istiod's API token out of the
# agent containers.
API_TOKEN_MASK_VOLUME = "cacerts-agent-no-api-token"
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Where a migration from the mesh's old CA mounts that CA's Secret (docs/migration.md); an
# empty placeholder otherwise. The settings come from an optional ConfigMap.
MIGRATE_VOLUME = "cacerts-agent-migrate-from"
MIGRATE_MOUNT = "/etc/cacerts-agent/migrate-from"
MIGRATION_CONFIGMAP = "cacerts-agent-migration"
AGENT_VOLUMES = (TOKEN_VOLUME, VAULT_CA_VOLUME, API_TOKEN_MASK_VOLUME, MIGRATE_VOLUME)

# No runAsUser/runAsGroup: the image's USER 1337:1337 on plain Kubernetes, the namespace's
# assigned UID (the same for every container of the pod) on OpenShift.
SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

# Variant name (as post-render.sh takes it) -> kustomize components, in order.
VARIANTS = {
    "sidecar": ["sidecar"],
    "native-sidecar": ["native-sidecar"],
    "init-only": ["init-only"],
    "sidecar multiroot": ["sidecar", "multiroot"],
    "native-sidecar multiroot": ["native-sidecar", "native-sidecar-multiroot"],
    "sidecar vault-ca-secret": ["sidecar", "vault-ca-secret"],
}

TESTDATA_FILES = (
    "istiod-1.24-deployment.yaml",
    "istiod-1.30-deployment.yaml",
    "istiod-1.24-chart-full.yaml",
    "charts/istio-discovery-1.24.0/Chart.yaml",
    "charts/istio-discovery-1.30.0/Chart.yaml",
)


TOOLS_DIR = os.path.join(DEPLOY_CACHE_DIR, "tools")


def fetch_tools():
    """Runs fetch-tools.sh once per process: (True, None), or (False, reason) when helm and
    kubectl cannot be downloaded here. Any other failure raises."""
    if not hasattr(fetch_tools, "result"):
        fetch = run([os.path.join(SOURCE_DIR, "tests", "deploy", "fetch-tools.sh"), TOOLS_DIR], timeout=600)
        if fetch.returncode == 0:
            fetch_tools.result = (True, None)
        elif fetch.returncode == 77:
            fetch_tools.result = (False, fetch.stderr.strip())
        else:
            raise AssertionError(f"fetch-tools.sh failed ({fetch.returncode}): {fetch.stderr}")
    return fetch_tools.result


def require_kubectl():
    """Makes `kubectl` callable by name (the tests and post-render.sh look it up on PATH):
    the machine's own, else the pinned download. Raises unittest.SkipTest with the reason
    when there is neither."""
    if shutil.which("kubectl"):
        return
    ok, reason = fetch_tools()
    if not ok:
        raise unittest.SkipTest("no kubectl on PATH and none could be fetched: " + reason)
    os.environ["PATH"] = TOOLS_DIR + os.pathsep + os.environ.get("PATH", "")


def require_helm():
    """Path of the helm 3 binary: $CACERTS_HELM, else the pinned download (not whatever helm
    is on PATH, so that results do not depend on the machine). Raises unittest.SkipTest with
    the reason when it cannot be had."""
    return _pinned_tool("CACERTS_HELM", "helm")


def require_helm4():
    """Path of a Helm 4 binary: $CACERTS_HELM4, else the pinned download."""
    return _pinned_tool("CACERTS_HELM4", "helm4")


def _pinned_tool(variable, tool):
    if os.environ.get(variable):
        return os.environ[variable]
    ok, reason = fetch_tools()
    if not ok:
        raise unittest.SkipTest(f"no {tool} binary could be fetched: " + reason)
    return os.path.join(TOOLS_DIR, tool)


VALIDATOR = os.path.join(TOOLS_DIR, "validator", "validate.mjs")


class _SchemaValidator:
    """One `node validate.mjs --serve` process (tests/deploy/validator) for the whole test
    module: the Kubernetes OpenAPI schemas of the npm package kubernetes-models, offline."""

    process = None

    @classmethod
    def problems(cls, docs):
        if cls.process is None:
            node = shutil.which("node") or shutil.which("nodejs")
            if not node:
                raise unittest.SkipTest("no node on PATH for the schema validator (Debian: nodejs)")
            ok, reason = fetch_tools()
            if not ok:
                raise unittest.SkipTest("the schema validator could not be fetched: " + reason)
            cls.process = subprocess.Popen([node, VALIDATOR, "--serve"], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
        cls.process.stdin.write(json.dumps(docs) + "\n")
        cls.process.stdin.flush()
        reply = cls.process.stdout.readline()
        if not reply:
            raise AssertionError("the schema validator exited")
        return json.loads(reply)["problems"]


def schema_problems(docs):
    """Every problem the Kubernetes schemas find in docs (an empty list when all are valid)."""
    return _SchemaValidator.problems(docs)


def testdata_dir():
    """The Istio inputs: $CACERTS_ISTIO_TESTDATA, else the copy in tests/deploy/testdata.

    A missing directory or file is a failure, never a skip: these tests must not pass
    without their inputs.
    """
    path = os.environ.get("CACERTS_ISTIO_TESTDATA") or os.path.join(
        SOURCE_DIR, "tests", "deploy", "testdata", "istio")
    missing = [f for f in TESTDATA_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise AssertionError(
            f"Istio test inputs missing under {path} (set CACERTS_ISTIO_TESTDATA): {missing}")
    return path


def read_testdata(name):
    with open(os.path.join(testdata_dir(), name), encoding="utf-8") as f:
        return f.read()


def chart_dir(version):
    return os.path.join(testdata_dir(), "charts", f"istio-discovery-{version}")


def load_docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def dump_docs(docs):
    return yaml.safe_dump_all(docs, sort_keys=False)


def doc_key(doc):
    meta = doc.get("metadata", {})
    return (doc.get("apiVersion"), doc.get("kind"), meta.get("namespace", ""), meta.get("name"))


def docs_by_key(docs):
    result = {}
    for d in docs:
        key = doc_key(d)
        if key in result:
            raise AssertionError(f"duplicate document {key}")
        result[key] = d
    return result


def is_istiod_deployment(doc):
    return doc.get("kind") == "Deployment" and \
        (doc.get("metadata", {}).get("labels") or {}).get("app") == "istiod"


def pod_spec(deployment):
    return deployment["spec"]["template"]["spec"]


def by_name(items):
    return {i["name"]: i for i in items or []}


def env_map(container):
    result = {}
    for e in container.get("env") or []:
        if "value" in e:
            result[e["name"]] = e["value"]
        else:
            result[e["name"]] = {k: v for k, v in e.items() if k != "name"}
    return result


def run(argv, **kwargs):
    """subprocess.run with text I/O, captured output, and a timeout."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(argv, check=False, **kwargs)


def kustomize_with_components(input_text, components):
    """`kubectl kustomize` over input_text with the given components, referenced by relative
    path as a user's own kustomization would; returns the output text."""
    return _kustomize(input_text, tuple(components))


@functools.lru_cache(maxsize=None)
def _kustomize(input_text, components):
    with tempfile.TemporaryDirectory(prefix="cacerts-deploy-") as tmp:
        with open(os.path.join(tmp, "rendered.yaml"), "w", encoding="utf-8") as f:
            f.write(input_text)
        lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization",
                 "resources:", "- rendered.yaml", "components:"]
        lines += ["- " + os.path.relpath(os.path.join(COMPONENTS_DIR, c), tmp) for c in components]
        with open(os.path.join(tmp, "kustomization.yaml"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        result = run(["kubectl", "kustomize", tmp])
        if result.returncode != 0:
            raise AssertionError(f"kubectl kustomize failed: {result.stderr}")
        return result.stdout


def post_render(input_text, args=(), **kwargs):
    return run([POST_RENDER, *args], input=input_text, **kwargs)


def read_agent_env(source):
    """KEY -> value of kustomize/config/<source>/agent.env, the file the agent's ConfigMap is
    generated from (kustomize `envs:` and `kubectl create configmap --from-env-file` rules:
    `KEY=value` lines, `#` comment lines, blank lines)."""
    data = {}
    with open(os.path.join(KUSTOMIZE_DIR, "config", source, "agent.env"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                data[key] = value
    return data


def read_yaml_file(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


class ContractAssertions(unittest.TestCase):
    """Assertions on the istiod pod that every install path promises."""

    def assertSchemaValid(self, docs):
        """Every document against the Kubernetes OpenAPI schemas (kubernetes-models)."""
        self.assertEqual(schema_problems(docs), [], "invalid against the Kubernetes schemas")

    def assertPodSemantics(self, deployment):
        """What schemas cannot see: references, single sources, the CA directory's wiring."""
        key = doc_key(deployment)
        spec = pod_spec(deployment)
        volumes = spec.get("volumes") or []
        names = [v["name"] for v in volumes]
        self.assertEqual(len(names), len(set(names)), f"{key}: duplicate volume names {names}")
        volumes = by_name(volumes)
        for v in volumes.values():
            self.assertEqual(len(set(v) - {"name"}), 1, f"{key}: volume {v['name']} needs exactly one source")
        inits = spec.get("initContainers") or []
        containers = inits + spec["containers"]
        all_names = [c["name"] for c in containers]
        self.assertEqual(len(all_names), len(set(all_names)), f"{key}: duplicate container names")
        for c in containers:
            paths = [m["mountPath"] for m in c.get("volumeMounts") or []]
            self.assertEqual(len(paths), len(set(paths)), f"{key}: {c['name']} mounts a path twice")
            for m in c.get("volumeMounts") or []:
                self.assertIn(m["name"], volumes, f"{key}: {c['name']} mounts undefined volume {m['name']}")
            port_names = {p.get("name") for p in c.get("ports") or []}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str):
                    self.assertIn(port, port_names, f"{key}: {c['name']} {probe} names an undefined port")
        # istiod's CA directory: mounted read-only in discovery from a memory emptyDir ...
        discovery = by_name(spec["containers"])["discovery"]
        ca_dir = env_map(discovery).get("ROOT_CA_DIR", KUSTOMIZE_CA_DIR)
        [ca_mount] = [m for m in discovery["volumeMounts"] if m["mountPath"] == ca_dir]
        self.assertIs(ca_mount.get("readOnly"), True, f"{key}: discovery must not write {ca_dir}")
        self.assertEqual(set(volumes[ca_mount["name"]]) - {"name"}, {"emptyDir"},
                         f"{key}: {ca_dir} must come from an emptyDir only (no Secret source)")
        self.assertEqual(volumes[ca_mount["name"]]["emptyDir"].get("medium"), "Memory")
        # ... written by an agent init container, which therefore runs before discovery.
        writers = [c for c in inits if c["name"] in AGENT_CONTAINERS and any(
            m["name"] == ca_mount["name"] and not m.get("readOnly") and
            m["mountPath"] == env_map(c).get("CACERTS_AGENT_DIR") for m in c.get("volumeMounts") or [])]
        self.assertTrue(writers, f"{key}: no agent init container writes {ca_dir}")
        for c in spec["containers"]:
            if c["name"] in AGENT_CONTAINERS:
                self.assertTrue(any(m["name"] == ca_mount["name"] and not m.get("readOnly")
                                    for m in c["volumeMounts"]), f"{key}: {c['name']} cannot write {ca_dir}")

    def patchedIstiods(self, docs):
        self.assertSchemaValid(docs)
        deployments = [d for d in docs if is_istiod_deployment(d)]
        self.assertTrue(deployments, "no Deployment labelled app=istiod in the output")
        for d in deployments:
            names = [c["name"] for c in pod_spec(d).get("containers", [])] + \
                [c["name"] for c in pod_spec(d).get("initContainers") or []]
            self.assertTrue(set(names) & set(AGENT_CONTAINERS),
                            f"{doc_key(d)} was not patched: containers {names}")
            self.assertPodSemantics(d)
        return deployments

    def assertAgentContainer(self, c, role, ca_dir, ca_volume):
        name = c["name"]
        self.assertEqual(c["image"], IMAGE, name)
        self.assertEqual(c["args"], [role], name)
        self.assertEqual(c["envFrom"][0], {"configMapRef": {"name": CONFIGMAP}}, name)
        # The migration's settings override the agent's (later envFrom entries win); kustomize
        # gives the ConfigMap a hash suffix when a migrate-from-* component generates it.
        [migration] = c["envFrom"][1:]
        self.assertEqual(set(migration["configMapRef"]), {"name", "optional"}, name)
        self.assertIs(migration["configMapRef"]["optional"], True, name)
        self.assertRegex(migration["configMapRef"]["name"], rf"^{MIGRATION_CONFIGMAP}(-[a-z0-9]{{10}})?$", name)
        env = env_map(c)
        self.assertEqual(env.get("CACERTS_AGENT_DIR"), ca_dir, name)
        self.assertEqual(env.get("CACERTS_AGENT_JWT_FILE"), TOKEN_MOUNT + "/token", name)
        self.assertEqual(env.get("VAULT_CACERT"), VAULT_CA_MOUNT + "/ca.crt", name)
        self.assertEqual(env.get("CACERTS_AGENT_MIGRATE_MOUNT"), MIGRATE_MOUNT, name)
        self.assertEqual(c["securityContext"], SECURITY_CONTEXT, name)
        res = c["resources"]
        self.assertEqual(set(res["requests"]), {"cpu", "memory"}, name)
        self.assertIn("memory", res["limits"], name)
        mounts = by_name(c["volumeMounts"])
        self.assertEqual(set(mounts), {ca_volume, TOKEN_VOLUME, VAULT_CA_VOLUME, API_TOKEN_MASK_VOLUME, MIGRATE_VOLUME},
                         name)
        self.assertEqual(mounts[MIGRATE_VOLUME], {"name": MIGRATE_VOLUME, "mountPath": MIGRATE_MOUNT, "readOnly": True},
                         name)
        self.assertEqual(mounts[API_TOKEN_MASK_VOLUME], {
            "name": API_TOKEN_MASK_VOLUME, "mountPath": API_TOKEN_DIR, "readOnly": True}, name)
        self.assertEqual(mounts[ca_volume]["mountPath"], ca_dir, name)
        self.assertFalse(mounts[ca_volume].get("readOnly", False), f"{name} must write {ca_dir}")
        self.assertEqual(mounts[TOKEN_VOLUME]["mountPath"], TOKEN_MOUNT, name)
        self.assertIs(mounts[TOKEN_VOLUME].get("readOnly"), True, name)
        self.assertEqual(mounts[VAULT_CA_VOLUME]["mountPath"], VAULT_CA_MOUNT, name)
        self.assertIs(mounts[VAULT_CA_VOLUME].get("readOnly"), True, name)
        if role == "init":
            self.assertNotIn("ports", c, name)
            self.assertNotIn("restartPolicy", c, name)
            return
        self.assertEqual(env.get("CACERTS_AGENT_LISTEN"), f":{METRICS_PORT}", name)
        self.assertEqual(env.get("CACERTS_AGENT_ISTIOD_METRICS_URL"),
                         "http://127.0.0.1:15014/metrics", name)
        self.assertEqual(c["ports"], [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT,
                                       "protocol": "TCP"}], name)
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": METRICS_PORT_NAME})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": METRICS_PORT_NAME})

    def assertNativeSidecar(self, c):
        self.assertEqual(c.get("restartPolicy"), "Always")
        self.assertEqual(c["startupProbe"]["httpGet"], {"path": "/readyz", "port": METRICS_PORT_NAME})

    def assertAgentVolumes(self, spec, vault_ca_from="configMap"):
        volumes = by_name(spec["volumes"])
        token = volumes[TOKEN_VOLUME]
        self.assertEqual(set(token), {"name", "projected"})
        self.assertEqual(token["projected"]["sources"], [{"serviceAccountToken": {
            "audience": "vault", "expirationSeconds": 600, "path": "token"}}])
        ca = volumes[VAULT_CA_VOLUME]
        self.assertEqual(set(ca), {"name", vault_ca_from})
        ref = ca[vault_ca_from]
        self.assertEqual(ref.get("name") or ref.get("secretName"), VAULT_CA_CONFIGMAP)
        self.assertEqual(ref["items"], [{"key": "ca.crt", "path": "ca.crt"}])
        self.assertEqual(volumes[API_TOKEN_MASK_VOLUME], {"name": API_TOKEN_MASK_VOLUME, "emptyDir": {
            "medium": "Memory", "sizeLimit": "1Ki"}})
        # Empty unless a migration puts the old CA's Secret there.
        self.assertIn(volumes[MIGRATE_VOLUME], (
            {"name": MIGRATE_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}},
            {"name": MIGRATE_VOLUME, "secret": {"secretName": "istio-ca-secret"}},
            {"name": MIGRATE_VOLUME, "secret": {"secretName": "cacerts"}}))
        # The Vault token and CA reach the agent only.
        for c in spec["containers"] + (spec.get("initContainers") or []):
            used = {m["name"] for m in c.get("volumeMounts") or []}
            if c["name"] not in AGENT_CONTAINERS:
                self.assertFalse(used & set(AGENT_VOLUMES), f"{c['name']} mounts {used & set(AGENT_VOLUMES)}")

    def assertMemoryEmptyDir(self, volume):
        self.assertEqual(set(volume), {"name", "emptyDir"},
                         f"volume {volume['name']} must have exactly one source, emptyDir")
        self.assertEqual(volume["emptyDir"]["medium"], "Memory")
        self.assertIn("sizeLimit", volume["emptyDir"])

    def assertDiscoveryReadsCa(self, spec, volume, path):
        discovery = by_name(spec["containers"])["discovery"]
        mounts = [m for m in discovery["volumeMounts"] if m["name"] == volume]
        self.assertEqual(mounts, [{"name": volume, "mountPath": path, "readOnly": True}])

    def assertKustomizePod(self, deployment, variant):
        """The pod contract of a kustomize variant ('sidecar', 'native-sidecar multiroot', ...)."""
        spec = pod_spec(deployment)
        words = variant.split()
        kind = words[0]
        self.assertMemoryEmptyDir(by_name(spec["volumes"])["cacerts"])
        self.assertDiscoveryReadsCa(spec, "cacerts", KUSTOMIZE_CA_DIR)
        self.assertAgentVolumes(spec, "secret" if "vault-ca-secret" in words else "configMap")
        containers = spec["containers"]
        inits = spec.get("initContainers") or []
        init_names = [c["name"] for c in inits]
        agent_inits = [c for c in inits if c["name"] in AGENT_CONTAINERS]
        self.assertEqual(init_names[:len(agent_inits)], [c["name"] for c in agent_inits],
                         "agent init containers run first")
        if kind == "sidecar":
            self.assertEqual([c["name"] for c in containers], ["discovery", "cacerts-agent"])
            self.assertEqual([c["name"] for c in agent_inits], ["cacerts-init"])
            self.assertAgentContainer(agent_inits[0], "init", KUSTOMIZE_CA_DIR, "cacerts")
            agent = containers[1]
            self.assertAgentContainer(agent, "sidecar", KUSTOMIZE_CA_DIR, "cacerts")
            self.assertNotIn("restartPolicy", agent)
            self.assertNotIn("startupProbe", agent)
        elif kind == "native-sidecar":
            self.assertEqual([c["name"] for c in containers], ["discovery"])
            self.assertEqual([c["name"] for c in agent_inits], ["cacerts-agent"])
            agent = agent_inits[0]
            self.assertAgentContainer(agent, "sidecar", KUSTOMIZE_CA_DIR, "cacerts")
            self.assertNativeSidecar(agent)
        elif kind == "init-only":
            self.assertEqual([c["name"] for c in containers], ["discovery"])
            self.assertEqual([c["name"] for c in agent_inits], ["cacerts-init"])
            self.assertAgentContainer(agent_inits[0], "init", KUSTOMIZE_CA_DIR, "cacerts")
            agent = None
        else:
            self.fail(f"unknown variant {variant}")
        discovery_env = env_map(by_name(containers)["discovery"])
        if "multiroot" in words:
            self.assertEqual(discovery_env.get("ISTIO_MULTIROOT_MESH"), "true")
            self.assertEqual(env_map(agent)["CACERTS_AGENT_ISTIOD_MULTIROOT"], "true")
        else:
            self.assertNotIn("ISTIO_MULTIROOT_MESH", discovery_env)
            if agent is not None:
                self.assertEqual(env_map(agent)["CACERTS_AGENT_ISTIOD_MULTIROOT"], "false")

    def assertValuesPod(self, deployment, variant):
        """The pod contract of a values-only install ('native-sidecar' or 'init-only')."""
        spec = pod_spec(deployment)
        volumes = by_name(spec["volumes"])
        self.assertMemoryEmptyDir(volumes[VALUES_CA_VOLUME])
        # The chart's optional Secret stays as rendered; istiod reads ROOT_CA_DIR instead.
        self.assertEqual(volumes["cacerts"], {"name": "cacerts",
                                              "secret": {"secretName": "cacerts", "optional": True}})
        self.assertDiscoveryReadsCa(spec, VALUES_CA_VOLUME, VALUES_CA_DIR)
        discovery = by_name(spec["containers"])["discovery"]
        self.assertEqual(env_map(discovery).get("ROOT_CA_DIR"), VALUES_CA_DIR)
        self.assertAgentVolumes(spec)
        self.assertEqual([c["name"] for c in spec["containers"]], ["discovery"])
        inits = spec.get("initContainers") or []
        if variant == "native-sidecar":
            self.assertEqual([c["name"] for c in inits], ["cacerts-agent"])
            self.assertAgentContainer(inits[0], "sidecar", VALUES_CA_DIR, VALUES_CA_VOLUME)
            self.assertNativeSidecar(inits[0])
        elif variant == "init-only":
            self.assertEqual([c["name"] for c in inits], ["cacerts-init"])
            self.assertAgentContainer(inits[0], "init", VALUES_CA_DIR, VALUES_CA_VOLUME)
        else:
            self.fail(f"unknown values variant {variant}")
        # The render-time guard rendered to the values file's name.
        self.assertEqual(env_map(inits[0]).get("CACERTS_INSTALLED_BY"),
                         f"helm/values-{variant}.yaml")

    def assertOnlyIntendedChanges(self, before_docs, after_docs, strip, check_other=None):
        """Every document is as rendered, except istiod Deployments, which equal the input once
        strip(deployment) has removed the intended changes, and documents for which
        check_other(before, after) returns True after asserting on them itself. Volume order
        is not compared: strategic merge moves a patched volume, and volumes are looked up by
        name."""
        before = docs_by_key(before_docs)
        after = docs_by_key(after_docs)
        self.assertEqual(sorted(before, key=str), sorted(after, key=str), "set of documents changed")
        patched = 0
        for key, doc in before.items():
            if is_istiod_deployment(doc):
                self.assertEqual(normalise_volumes(strip(after[key])), normalise_volumes(doc),
                                 f"{key}: changes beyond the agent's")
                patched += 1
            elif check_other is None or not check_other(doc, after[key]):
                self.assertEqual(after[key], doc, f"{key} changed")
        self.assertGreater(patched, 0, "no istiod Deployment compared")


def normalise_volumes(deployment):
    d = copy.deepcopy(deployment)
    spec = pod_spec(d)
    spec["volumes"] = sorted(spec.get("volumes", []), key=lambda v: v["name"])
    return d


def strip_kustomize_changes(original):
    """Returns strip(deployment) undoing the kustomize patch relative to the original."""
    orig_volumes = by_name(pod_spec(original)["volumes"])
    orig_env = {k for k in env_map(by_name(pod_spec(original)["containers"])["discovery"])}

    def strip(deployment):
        d = copy.deepcopy(deployment)
        spec = pod_spec(d)
        spec["containers"] = [c for c in spec["containers"] if c["name"] not in AGENT_CONTAINERS]
        inits = [c for c in spec.get("initContainers") or [] if c["name"] not in AGENT_CONTAINERS]
        if inits:
            spec["initContainers"] = inits
        else:
            spec.pop("initContainers", None)
        spec["volumes"] = [orig_volumes["cacerts"] if v["name"] == "cacerts" else v
                           for v in spec["volumes"] if v["name"] not in AGENT_VOLUMES]
        discovery = by_name(spec["containers"])["discovery"]
        if "ISTIO_MULTIROOT_MESH" not in orig_env:
            discovery["env"] = [e for e in discovery["env"] if e["name"] != "ISTIO_MULTIROOT_MESH"]
        return d
    return strip


def strip_values_changes(deployment):
    """Undoes what the helm values files add to the chart's istiod Deployment."""
    d = copy.deepcopy(deployment)
    spec = pod_spec(d)
    spec.pop("initContainers", None)
    spec["volumes"] = [v for v in spec["volumes"]
                       if v["name"] not in AGENT_VOLUMES + (VALUES_CA_VOLUME,)]
    discovery = by_name(spec["containers"])["discovery"]
    discovery["volumeMounts"] = [m for m in discovery["volumeMounts"] if m["name"] != VALUES_CA_VOLUME]
    discovery["env"] = [e for e in discovery["env"] if e["name"] != "ROOT_CA_DIR"]
    return d


def run_tests():
    """Runs this module's unittest cases. Exit 77 (ctest SKIP_RETURN_CODE) when every test
    was skipped, so a missing tool shows as a skip with its reason, never as a pass."""
    sys.dont_write_bytecode = True
    program = unittest.main(exit=False, verbosity=2)
    result = program.result
    # Subtest failures are reported per subtest; count each test once.
    failed = len({test.id().split(" ")[0] for test, _ in result.failures + result.errors}) + \
        len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    print(f"{max(0, result.testsRun - failed - skipped)} passed, {failed} failed, {skipped} skipped")
    if failed:
        sys.exit(1)
    if result.testsRun == 0 or skipped == result.testsRun:
        for test, reason in result.skipped[:1]:
            print(f"SKIPPED: {reason}")
        sys.exit(77)
    sys.exit(0)


def which(tool):
    return shutil.which(tool)
