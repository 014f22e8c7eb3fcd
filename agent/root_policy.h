// Root rotation in the order istiod accepts (istio-cacerts.md §4.4, §6): which root bundle
// to publish, with which intermediate, and in which phase. Pure functions: the caller
// passes the published bytes, Vault's trust set, the time and the phase state.
//
// istiod compares a reloaded root-cert.pem with the bundle it holds: 1.20-1.29 accept the
// change only if one file is a byte substring of the other, 1.30+ only if one set of
// certificates contains the other, and without ISTIO_MULTIROOT_MESH=true no change at all.
// So roots are only ever appended after the old bytes or dropped from the front, and
// unchanged roots keep their exact bytes. With --istiod-multiroot:
//
//   phase 1 (propagating)  Vault trusts a root that is not published: publish old+new
//                          roots with the current intermediate, so proxies learn the new
//                          root (a candidate from an already trusted root may be published
//                          with them).
//   phase 2 (switched)     --root-propagation after phase 1: publish the next intermediate
//                          (whatever Vault signs now, typically from the new default
//                          issuer) with old+new roots.
//   phase 3 (retired)      --root-retire after phase 2, once the old root is gone from
//                          Vault or expired: drop it from the front of the file.
//
// Without --istiod-multiroot the root bytes never change: a candidate that chains to a
// published root is still published (with the old bytes), one that needs a new root is
// refused and the current intermediate stays (blocked).
//
// Outside a rotation, a root that disappears from Vault stays published until it expires:
// trusting an extra root is harmless, dropping one early could break live workload
// certificates. Expired roots are dropped from the front at any time with multiroot.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/defaults.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/x509.h"

namespace cacerts {

enum class RootPhase { kNone = 0, kPropagating = 1, kSwitched = 2, kRetired = 3 };
std::string_view toString(RootPhase phase);

// The phase state. Outside phase none it is published as a hidden file inside the
// generation, so it changes atomically with the material it describes and survives a
// restart of the sidecar; no file means phase none (a generation written by init, too).
struct RootState {
  RootPhase phase = RootPhase::kNone;
  SystemTime since{};  // when the phase was entered
  // SHA-256 fingerprints (CertInfo form) of the roots appended in phase 1: not trusted by
  // every proxy until the propagation time has passed.
  std::vector<std::string> new_roots;

  bool operator==(const RootState& other) const = default;
};

// The hidden file's name inside a generation (no top-level link, istiod never sees it).
inline constexpr char kRootStateFile[] = "root-rotation.json";

// One JSON object; decodeRootState(encodeRootState(s)) == s (times in milliseconds).
std::string encodeRootState(const RootState& state);
// kValidation for text that is not such an object (the message names the file, never
// quotes it).
Result<RootState> decodeRootState(std::string_view text);

struct RootPolicy {
  bool multiroot = false;                          // --istiod-multiroot
  Duration propagation = defaults::kRootPropagation;
  Duration retire = defaults::kRootRetire;
};

struct RootInputs {
  // The published root file, byte for byte, and its certificates in file order. Empty
  // when nothing is published.
  std::string published_pem;
  std::vector<Certificate> published;
  // Vault's trust set (a candidate's roots, or a cheap read); nullopt when not known now.
  std::optional<std::vector<Certificate>> vault;
  // The root the published intermediate chains to; nullopt when nothing usable (valid,
  // unexpired) is published: then a candidate replaces it, keeping the published root
  // bytes when they anchor it (and match Vault's set, with multiroot).
  std::optional<Certificate> current_anchor;
  // The root a freshly loaded, valid candidate chains to; nullopt when there is none.
  std::optional<Certificate> candidate_anchor;
  RootState state;
  SystemTime now;
};

enum class RootAction {
  kPublishCandidate,  // publish the candidate with roots_pem
  kPublishCurrent,    // republish the current intermediate with roots_pem
  kKeepCurrent,       // publish nothing
};
std::string_view toString(RootAction action);

struct RootDecision {
  RootAction action = RootAction::kKeepCurrent;
  std::string roots_pem;  // the root file to publish (for the publish actions)
  RootState state;        // the state to publish with it; the input state for kKeepCurrent
  // Vault's roots differ from the published ones (or the candidate needs a new root) and
  // --istiod-multiroot=false forbids the change.
  bool blocked = false;
  // A candidate exists but must wait (its root is still propagating) until `wake`.
  bool candidate_deferred = false;
  // Phase 1 has run its course but no candidate was given: load one to switch.
  bool needs_candidate = false;
  // When the phase can next advance (end of propagation or of the retire wait).
  std::optional<SystemTime> wake;
  std::string note;  // why, for the log line; empty when nothing noteworthy happened
};

RootDecision decideRoots(const RootInputs& in, const RootPolicy& policy);

// The byte operations behind decideRoots, exposed for tests. `pem` must consist of
// CERTIFICATE blocks only (as parseCertificates accepts).
// pem + the canonical PEM of `added`, with a newline in between when pem lacks one.
std::string appendRoots(std::string_view pem, const std::vector<Certificate>& added);
// pem from the start of its (count+1)-th block: a byte substring of pem.
std::string dropLeadingRoots(std::string_view pem, std::size_t count);

}  // namespace cacerts
