#include "tests/support/fault_matrix.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests/support/e2e.h"

namespace cacerts::testing {
namespace {

// A table cell must not break the row.
std::string cell(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string FaultMatrix::markdown() const {
  std::ostringstream out;
  out << "### " << title_ << "\n\n"
      << "| fault | source | outcome (exit code / recovered) | recovery ms | previous generation intact | "
         "secrets in output |\n"
      << "|---|---|---|---:|---|---|\n";
  for (const auto& r : rows_) {
    out << "| " << cell(r.fault) << " | " << cell(r.source) << " | " << cell(r.outcome) << " | "
        << (r.recovery_ms ? std::to_string(*r.recovery_ms) : std::string("n/a")) << " | "
        << (r.previous_intact ? "yes" : "NO") << " | " << cell(r.secrets) << " |\n";
  }
  return out.str();
}

bool FaultMatrix::publish(const std::string& name) const {
  const std::string table = markdown();
  std::cerr << "\n" << table << std::endl;
  const char* dir = std::getenv("CACERTS_FAULT_MATRIX_DIR");
  if (dir == nullptr || *dir == '\0') return true;
  std::ofstream f(std::string(dir) + "/" + name + ".md", std::ios::binary | std::ios::trunc);
  f << table;
  f.close();
  return static_cast<bool>(f);
}

std::string leakedSecret(const std::string& text, const std::vector<std::string>& key_pems) {
  for (const char* marker : {kTokenMarker, kSecretIdMarker, kJwtMarkerClaim}) {
    if (text.find(marker) != std::string::npos) return std::string("marker ") + marker;
  }
  if (containsPemArmour(text)) return "PEM armour";
  if (text.find("eyJ") != std::string::npos) return "JWT";
  for (const auto& pem : key_pems) {
    std::istringstream lines(pem);
    std::string line;
    while (std::getline(lines, line)) {
      // Base64 body lines only: the armour is caught above, and short lines match by chance.
      if (line.size() >= 40 && line.rfind("-----", 0) != 0 && text.find(line) != std::string::npos) {
        return "private key bytes";
      }
    }
  }
  return "";
}

}  // namespace cacerts::testing
