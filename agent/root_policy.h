// Root rotation in the order istiod accepts (istio-cacerts.md §4.4, §6): which root bundle
// to publish, with which intermediate. Pure and stateless: the caller passes the published
// bytes, the source's trust set and plan, and the time; nothing about a rotation is kept
// per pod, so every replica (and an init that starts mid-rotation) decides alike.
//
// istiod compares a reloaded root-cert.pem with the bundle it holds: 1.20-1.29 accept the
// change only if one file is a byte substring of the other, 1.30+ only if one set of
// certificates contains the other, and without ISTIO_MULTIROOT_MESH=true no change at all.
// So roots are only ever appended after the old bytes or dropped from the front, and
// unchanged roots keep their exact bytes. With --istiod-multiroot:
//
//   a root the source trusts that is not published is appended at once, with whatever
//     intermediate is current (phase "propagating" while it does not sign yet);
//   a candidate is published when the source planned its signer (RootSchedule, PKI), or
//     when its root is the oldest one, the current one, or older than --root-propagation;
//     otherwise it waits until then and the current intermediate stays;
//   a root the source no longer trusts (deleted from Vault) leaves the file only from the
//     front, never while it anchors the intermediate, and only --root-retire after the
//     signing root took over (phase "switched" until then); an expired one at any time.
//
// Without --istiod-multiroot the root bytes never change: a candidate that chains to a
// published root is still published (with the old bytes), one that needs a new root is
// refused and the current intermediate stays (blocked).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/ca_bundle.h"
#include "agent/defaults.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/x509.h"

namespace cacerts {

// Where the published set stands in a rotation (the root_rotation_phase gauge, logs):
// propagating while the file holds a root newer than the intermediate's, switched while it
// holds an older one, none otherwise.
enum class RootPhase { kNone = 0, kPropagating = 1, kSwitched = 2 };
std::string_view toString(RootPhase phase);

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
  // The source's trust set, oldest first (a candidate's roots, or a cheap read); nullopt
  // when not known now.
  std::optional<std::vector<Certificate>> vault;
  // The source's plan, given with a candidate or a trust set; nullopt for sources that do
  // not plan (KV: the operator chooses the intermediate).
  std::optional<RootSchedule> schedule;
  // The root the published intermediate chains to; nullopt when nothing usable (valid,
  // unexpired) is published: then a candidate replaces it, keeping the published root
  // bytes when they anchor it (and match Vault's set, with multiroot).
  std::optional<Certificate> current_anchor;
  // The root a freshly loaded, valid candidate chains to; nullopt when there is none.
  std::optional<Certificate> candidate_anchor;
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
  // The published set's phase after this decision.
  RootPhase phase = RootPhase::kNone;
  // Vault's roots differ from the published ones (or the candidate needs a new root) and
  // --istiod-multiroot=false forbids the change.
  bool blocked = false;
  // A candidate exists but must wait (its root is still propagating) until `wake`.
  bool candidate_deferred = false;
  // When the decision changes by the clock alone: the deferred candidate's root has
  // propagated, or a root that left Vault may leave the file.
  std::optional<SystemTime> wake;
  std::string note;  // why, for the log line; empty when nothing noteworthy happened
};

RootDecision decideRoots(const RootInputs& in, const RootPolicy& policy);

// The phase of a root file (in file order) whose intermediate chains to `anchor`.
RootPhase phaseOf(const std::vector<Certificate>& roots, const Certificate& anchor);

// The byte operations behind decideRoots, exposed for tests. `pem` must consist of
// CERTIFICATE blocks only (as parseCertificates accepts).
// pem + the canonical PEM of `added`, with a newline in between when pem lacks one.
std::string appendRoots(std::string_view pem, const std::vector<Certificate>& added);
// pem from the start of its (count+1)-th block: a byte substring of pem.
std::string dropLeadingRoots(std::string_view pem, std::size_t count);

}  // namespace cacerts
