#include "agent/check_mode.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/ca_bundle.h"
#include "agent/layout.h"
#include "agent/publisher.h"
#include "common/duration.h"
#include "common/x509.h"

namespace cacerts {
namespace {

nlohmann::json certJson(const CertInfo& c, SystemTime now) {
  const auto remaining = std::chrono::duration_cast<std::chrono::seconds>(c.not_after - now).count();
  return {{"subject", c.subject},
          {"issuer", c.issuer},
          {"serial", c.serial_hex},
          {"not_before", formatTime(c.not_before)},
          {"not_after", formatTime(c.not_after)},
          {"remaining_seconds", remaining},
          {"sha256", c.sha256_fingerprint},
          {"is_ca", c.is_ca},
          {"key", c.key_description}};
}


void printCert(const char* label, const CertInfo& c, SystemTime now) {
  const auto remaining = std::chrono::duration_cast<std::chrono::seconds>(c.not_after - now).count();
  std::printf("%s\n  subject:    %s\n  issuer:     %s\n  serial:     %s\n  not before: %s\n  not after:  %s (%s left)\n"
              "  key:        %s\n  sha256:     %s\n",
              label, c.subject.c_str(), c.issuer.c_str(), c.serial_hex.c_str(), formatTime(c.not_before).c_str(),
              formatTime(c.not_after).c_str(), (remaining < 0 ? std::string("expired") : describeDuration(std::chrono::seconds(remaining))).c_str(), c.key_description.c_str(),
              c.sha256_fingerprint.c_str());
}

}  // namespace

int runCheck(const Config& config, Clock& clock) {
  const SystemTime now = clock.now();
  Layout layout = Layout::kIstio;
  Result<CaMaterial> material = readDirectory(config.dir, layout);
  if (!material) {
    const int code = material.error().code == ErrorCode::kOutput ? 6 : 5;
    if (config.json) {
      std::printf("%s\n", nlohmann::json({{"dir", config.dir}, {"accepted", false}, {"error", material.error().message}}).dump(2).c_str());
    } else {
      std::printf("%s: NOT ACCEPTABLE\n  %s\n", config.dir.c_str(), material.error().message.c_str());
    }
    return code;
  }
  const BundleReport report = inspectBundle(*material, validationOptionsFor(config, now));
  const CheckResult* istiod_refusal = report.firstFailure(Policy::kIstiod);
  const CheckResult* agent_refusal = report.firstFailure(Policy::kAgent);
  // istiod's verdict decides; the agent's stricter policies only when asked to (--policy).
  const int code = istiod_refusal != nullptr ? 5 : (agent_refusal != nullptr && config.policy_fatal) ? 7 : 0;
  const std::string istiod_release = "1." + std::to_string(config.istio_minor);
  if (config.json) {
    nlohmann::json j = {{"dir", config.dir},
                        {"layout", toString(layout)},
                        {"istio_version", istiod_release},
                        {"accepted", code == 0},
                        {"istiod_would_load", istiod_refusal == nullptr},
                        {"agent_policy_ok", agent_refusal == nullptr},
                        {"exit_code", code}};
    if (report.ca_cert) j["ca_cert"] = certJson(*report.ca_cert, now);
    j["chain"] = nlohmann::json::array();
    for (const auto& c : report.chain) j["chain"].push_back(certJson(c, now));
    j["roots"] = nlohmann::json::array();
    for (const auto& c : report.roots) j["roots"].push_back(certJson(c, now));
    j["checks"] = nlohmann::json::array();
    for (const auto& c : report.checks) {
      j["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"policy", toString(c.policy)}, {"detail", c.detail}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    // Two verdicts, istiod's first: what istiod would do decides, this agent's stricter
    // policies are warnings unless --policy makes them fatal.
    std::printf("%s (%s layout): istiod %s would %s\n", config.dir.c_str(), std::string(toString(layout)).c_str(),
                istiod_release.c_str(), istiod_refusal == nullptr ? "accept it" : "REFUSE it");
    if (istiod_refusal != nullptr) {
      std::printf("  istiod's reason: %s: %s\n", istiod_refusal->name.c_str(), istiod_refusal->detail.c_str());
    }
    std::size_t warnings = 0;
    for (const auto& c : report.checks) warnings += (!c.ok && c.policy == Policy::kAgent) ? 1 : 0;
    if (warnings > 0) {
      std::printf("agent policy: %zu %s (%s)\n", warnings, warnings == 1 ? "warning" : "warnings",
                  config.policy_fatal ? "fatal with --policy" : "istiod does not apply these; --policy makes them fatal");
      for (const auto& c : report.checks) {
        if (!c.ok && c.policy == Policy::kAgent) std::printf("  [WARN] %s: %s\n", c.name.c_str(), c.detail.c_str());
      }
    } else {
      std::printf("agent policy: no warnings\n");
    }
    if (report.ca_cert) printCert("signing certificate", *report.ca_cert, now);
    for (std::size_t i = 0; i < report.roots.size(); ++i) {
      printCert(("root " + std::to_string(i + 1)).c_str(), report.roots[i], now);
    }
    std::printf("checks\n");
    for (const auto& c : report.checks) {
      const char* mark = c.ok ? "ok  " : c.policy == Policy::kAgent && !config.policy_fatal ? "WARN" : "FAIL";
      std::printf("  [%s] %s (%s rule)%s%s\n", mark, c.name.c_str(), std::string(toString(c.policy)).c_str(),
                  c.detail.empty() ? "" : ": ", c.detail.c_str());
    }
  }
  return code;
}

}  // namespace cacerts
