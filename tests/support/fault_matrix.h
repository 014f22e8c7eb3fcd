// The fault matrix's report: one row per injected fault, printed as a Markdown table so
// that a run's figures (exit code or recovery, time to recover, whether the previous
// generation survived, whether any output leaked a secret) can be read and compared.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace cacerts::testing {

struct FaultRow {
  std::string fault;
  std::string source;   // "kv", "pki", or what the fault acts on
  std::string outcome;  // e.g. "exit 0 after retries", "kept serving + recovered"; failures say why
  std::optional<long long> recovery_ms{};  // empty: "n/a" (a permanent fault)
  bool previous_intact = false;
  std::string secrets = "none";  // what leaked, or "none"
};

class FaultMatrix {
 public:
  explicit FaultMatrix(std::string title) : title_(std::move(title)) {}
  void add(FaultRow row) { rows_.push_back(std::move(row)); }
  const std::vector<FaultRow>& rows() const { return rows_; }
  std::string markdown() const;
  // Prints the table to stderr and, when CACERTS_FAULT_MATRIX_DIR is set, writes it to
  // $CACERTS_FAULT_MATRIX_DIR/<name>.md. Returns false when that file cannot be written.
  bool publish(const std::string& name) const;

 private:
  std::string title_;
  std::vector<FaultRow> rows_;
};

// What in `text` looks like a leaked secret: a credential marker, PEM armour, a JWT, or a
// line of one of `key_pems`' base64 bodies. "" when nothing.
std::string leakedSecret(const std::string& text, const std::vector<std::string>& key_pems = {});

// Whole milliseconds from `from` to `to` (steady time), for the tables' time columns.
inline long long msBetween(std::chrono::steady_clock::time_point from,
                           std::chrono::steady_clock::time_point to = std::chrono::steady_clock::now()) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace cacerts::testing
