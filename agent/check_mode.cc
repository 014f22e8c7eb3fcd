#include "agent/check_mode.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/ca_bundle.h"
#include "agent/layout.h"
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
  ValidationOptions options;
  options.now = now;
  options.min_remaining = config.min_remaining;
  const BundleReport report = inspectBundle(*material, options);
  if (config.json) {
    nlohmann::json j = {{"dir", config.dir},
                        {"layout", toString(layout)},
                        {"accepted", report.ok()},
                        {"istiod_would_load", report.istiodWouldLoad()}};
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
    // A set that only this agent's stricter policy refuses is said to be so: istiod would
    // load it, and the operator should know which rule is whose.
    const char* verdict = report.ok()                 ? "istiod would accept it"
                          : report.istiodWouldLoad() ? "NOT ACCEPTABLE (istiod would load it, but it fails this agent's policy)"
                                                     : "NOT ACCEPTABLE (istiod would refuse it)";
    std::printf("%s (%s layout): %s\n", config.dir.c_str(), std::string(toString(layout)).c_str(), verdict);
    if (report.ca_cert) printCert("signing certificate", *report.ca_cert, now);
    for (std::size_t i = 0; i < report.roots.size(); ++i) {
      printCert(("root " + std::to_string(i + 1)).c_str(), report.roots[i], now);
    }
    std::printf("checks\n");
    for (const auto& c : report.checks) {
      std::printf("  [%s] %s (%s rule)%s%s\n", c.ok ? "ok  " : "FAIL", c.name.c_str(),
                  std::string(toString(c.policy)).c_str(), c.detail.empty() ? "" : ": ", c.detail.c_str());
    }
  }
  return report.ok() ? 0 : 5;
}

}  // namespace cacerts
