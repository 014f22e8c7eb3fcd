#!/usr/bin/python3
"""kustomize/components/prometheus-rules: the PrometheusRule rendered by `kubectl kustomize`
alerts only on metrics the agent registers, each alert saying how bad it is and what to do."""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import unittest  # noqa: E402

from deploy_support import (  # noqa: E402
    COMPONENTS_DIR, SOURCE_DIR, docs_by_key, is_istiod_deployment, kustomize_with_components, load_docs,
    read_testdata, require_kubectl, run_tests)


def setUpModule():
    require_kubectl()


COMPONENT = "prometheus-rules"
RULE_FILE = os.path.join(COMPONENTS_DIR, COMPONENT, "prometheus-rule.yaml")
METRICS_HEADER = os.path.join(SOURCE_DIR, "agent", "agent_metrics.h")
INPUT = "istiod-1.30-deployment.yaml"
EXPECTED_ALERTS = {
    "CacertsAgentCaCertExpiringSoon", "CacertsAgentCaCertExpiryImminent", "CacertsAgentRootCertExpiring",
    "CacertsAgentCrlExpiring", "CacertsAgentRenewalStalled", "CacertsAgentReloadNotConfirmed",
    "CacertsAgentRootChangeBlocked", "CacertsAgentRotationFailures", "CacertsAgentIstiodRootChangeRefused",
    "CacertsAgentRenewalFailing", "CacertsAgentDown", "CacertsAgentMigrationSwitchDisagrees",
}
SEVERITIES = {"warning", "critical"}
# Alerts about the replicas disagreeing: they aggregate over the pods of a namespace.
FLEET_ALERTS = {"CacertsAgentMigrationSwitchDisagrees"}


def registered_metrics():
    """The metric names agent/agent_metrics.h registers, read from its kMetric constants, so
    that renaming a metric there (or in the rule) fails this test."""
    with open(METRICS_HEADER, encoding="utf-8") as f:
        return set(re.findall(r'^inline constexpr char kMetric\w+\[\] = "([^"]+)";$', f.read(), re.M))


# PromQL words that are not series names; aggregations also when written `max by (x) (...)`.
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
             "bool", "offset", "inf", "nan", "sum", "min", "max", "avg", "group", "count", "count_values",
             "stddev", "stdvar", "topk", "bottomk", "quantile"}


def metric_names(expr):
    """Series names selected by a PromQL expression: identifiers that are not label names,
    label values, durations, keywords, or function and aggregation calls."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'", '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)   # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", text)
    names = set()
    for m in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        if m.group(0).lower() in _KEYWORDS or re.match(r"\s*\(", text[m.end():]):
            continue
        names.add(m.group(0))
    return names


def alerts_of(rule):
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


class MetricNameParserTest(unittest.TestCase):
    """The parser the checks below rely on must find every series and nothing else."""

    def test_finds_series_and_skips_functions_labels_and_durations(self):
        expr = ('sum by (namespace, pod) (increase(a_total{result="failure",x=~"b_c"}[30m])) > 3\n'
                'and on (pod) (max by (pod) (d_seconds offset 5m) - time() < 3 * 24 * 3600)\n'
                'or e:recorded unless ignoring (x) group_left (y) f')
        self.assertEqual(metric_names(expr), {"a_total", "d_seconds", "e:recorded", "f"})

    def test_the_header_yields_the_registered_names(self):
        names = registered_metrics()
        self.assertGreaterEqual(len(names), 10)
        self.assertTrue(all(n.startswith("cacerts_agent_") for n in names), names)


class PrometheusRulesComponentTest(unittest.TestCase):
    """The component listed beside a variant, as docs/install.md tells users to."""

    @classmethod
    def setUpClass(cls):
        text = read_testdata(INPUT)
        cls.without = load_docs(kustomize_with_components(text, ["sidecar"]))
        cls.docs = load_docs(kustomize_with_components(text, ["sidecar", COMPONENT]))
        rules = [d for d in cls.docs if d.get("kind") == "PrometheusRule"]
        if len(rules) != 1:
            raise AssertionError(f"expected one PrometheusRule, got {len(rules)}")
        cls.rule = rules[0]
        cls.alerts = alerts_of(cls.rule)

    def test_the_rule_is_added_beside_istiod_and_nothing_else_changes(self):
        self.assertEqual(self.rule["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(self.rule["metadata"]["name"], "cacerts-agent")
        istiod = next(d for d in self.docs if is_istiod_deployment(d))
        self.assertEqual(self.rule["metadata"]["namespace"], istiod["metadata"]["namespace"])
        rest = [d for d in self.docs if d is not self.rule]
        self.assertEqual(docs_by_key(rest), docs_by_key(self.without))

    def test_it_has_the_expected_alerts(self):
        names = [a["alert"] for a in self.alerts]
        self.assertEqual(len(names), len(set(names)), names)
        self.assertEqual(set(names), EXPECTED_ALERTS)

    def test_every_expression_uses_only_registered_metrics(self):
        registered = registered_metrics()
        used = set()
        for alert in self.alerts:
            with self.subTest(alert=alert["alert"]):
                names = metric_names(alert["expr"])
                self.assertTrue(names, "selects no metric")
                self.assertLessEqual(names, registered, f"unregistered: {sorted(names - registered)}")
                used |= names
        self.assertGreaterEqual(len(used), 7)

    def test_every_alert_is_labelled_explained_and_delayed(self):
        for alert in self.alerts:
            with self.subTest(alert=alert["alert"]):
                self.assertIn(alert.get("labels", {}).get("severity"), SEVERITIES)
                annotations = alert.get("annotations", {})
                for key in ("summary", "description"):
                    self.assertTrue(str(annotations.get(key, "")).strip(), key)
                self.assertRegex(str(alert.get("for", "")), r"^[0-9]+[smhd]$")

    def test_per_replica_alerts_keep_the_pod_label(self):
        # istiod runs several replicas that renew independently: aggregations must keep `pod`,
        # except in the alerts that compare the replicas of a namespace with each other.
        for alert in self.alerts:
            for grouping in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", alert["expr"]):
                with self.subTest(alert=alert["alert"], grouping=grouping):
                    labels = [g.strip() for g in grouping.split(",")]
                    if alert["alert"] in FLEET_ALERTS:
                        self.assertEqual(labels, ["namespace"])
                    else:
                        self.assertIn("pod", labels)

    def test_fleet_alerts_compare_replicas(self):
        self.assertLessEqual(FLEET_ALERTS, {a["alert"] for a in self.alerts})

    def test_the_rendered_rule_is_the_component_file(self):
        with open(RULE_FILE, encoding="utf-8") as f:
            self.assertEqual(load_docs(f.read()), [self.rule])


if __name__ == "__main__":
    run_tests()
