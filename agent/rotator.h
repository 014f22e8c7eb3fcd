// Rotator: the sidecar's core. One blocking loop on one thread:
//
//   adopt the published generation (no Vault traffic) or publish a first one
//   loop: sleep until something is due (renewal, retry, forced renewal, root switch, root
//         check, poll, reload confirmation poll) or a wake-up, then do the one thing due:
//         load a candidate -> validate -> root policy (root_policy.h) -> publish
//
// Nothing waits for anything else: every pending piece of work is a deadline, and the loop
// sleeps (Clock::sleepUntil, on the wall clock, so a clock step forward is acted on at
// once) until the earliest. Reload confirmation in particular is a pending state polled by
// the loop, so a KV change or a forced renewal right after a publish is not held up by
// --confirm-timeout; a newer publish supersedes a confirmation still pending.
//
// Forced renewals (SIGHUP, POST /rotate) are coalesced and rate-limited: any number of
// triggers before the loop looks makes one request; a trigger that arrives while a
// renewal fetches its candidate is folded into it (one that arrives after the fetch asks
// for newer material and waits its turn); a renewal starts at most once per rotate_min_interval
// (counted from the start of the previous renewal of any kind), and a trigger inside the
// interval is deferred to its end, never dropped.
//
// Scheduling: the renewal time comes from schedule.h (drawn once per published
// certificate); a failure keeps the current generation (fail static) and retries with
// backoff, never later than the current ca-cert's notAfter. A renewal whose candidate must
// wait for root propagation is deferred to the end of it. Polling runs every poll interval:
// for KV through CaSource::changeStamp and load(), for PKI through CaSource::trustSet(),
// which issues nothing: a new root is appended at once with the current intermediate.
//
// Root rotation keeps no state of its own (root_policy.h, root_plan.h): the source's plan
// (RootSchedule) says when a different root starts signing, and at that instant plus a
// random delay of at most min(--root-retire/4, 1 min) the sidecar renews; every replica
// computes the same instant, so all have switched long before any drops the old root.
//
// Decisions are logged once where they are made, as event=... key=value lines; metrics are
// those of agent_metrics.h.
//
// Threading: run() owns all state and runs on one thread. readiness() and publishMutex()
// may be used from other threads; RotatorControl flags are set from anywhere, followed by
// Clock::interrupt() so a sleeping loop notices at once.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/defaults.h"
#include "agent/ca_bundle.h"
#include "agent/layout.h"
#include "agent/reload_confirm.h"
#include "agent/root_policy.h"
#include "agent/schedule.h"
#include "agent/source.h"
#include "agent/status_server.h"
#include "common/atomic_writer.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/random.h"
#include "common/result.h"

namespace cacerts {

struct RotatorSettings {
  RenewalPolicy renewal;
  BackoffPolicy retry{defaults::kRetryInitial, defaults::kRetryMax};
  RootPolicy roots;
  Layout layout = Layout::kIstio;
  unsigned key_mode = 0600;
  Duration min_remaining = defaults::kMinRemaining;  // for fresh candidates
  // --istio-version and --relax-policy; `now` and `min_remaining` are set at each use.
  ValidationOptions validation;
  Duration poll_interval = defaults::kKvPollInterval;  // at least 100 ms
  // true (KV): a poll compares the change stamp and load()s on a change (or every time
  // when the source has no stamp). false (PKI, whose load() issues a certificate): a poll
  // reads the trust set only.
  bool poll_always = true;
  // With nothing valid published at start: transient failures are retried this long,
  // other failures end run() at once (as in init mode).
  Duration startup_timeout = defaults::kTimeout;
  // Forced renewals start at most this often (see above); zero disables the limit.
  Duration rotate_min_interval = defaults::kRotateMinInterval;
};

// Requests from other threads. Set a flag, then call Clock::interrupt().
struct RotatorControl {
  std::atomic<bool> stop{false};    // SIGTERM/SIGINT: return from run() at the next safe point
  std::atomic<bool> rotate{false};  // SIGHUP, POST /rotate: renew soon (rate-limited)
};

class Rotator {
 public:
  // All references must outlive the Rotator. No I/O here.
  Rotator(CaSource& source, AtomicDirWriter& writer, ReloadConfirmer& confirmer, Metrics& metrics, Clock& clock,
          Random& random, RotatorSettings settings);

  // Runs until control.stop is set (returns ok), or until nothing valid can be kept
  // published: the first publish failed (a non-transient error, or transient ones past
  // startup_timeout), or the published ca-cert expired without a valid replacement. The
  // error then carries the code of the last failure (exitCodeFor gives the exit code;
  // a refused root change counts as kValidation).
  Status run(RotatorControl& control);

  // 200-worthy while a valid generation is published and its ca-cert has not expired.
  // Thread-safe; never touches Vault.
  Readiness readiness() const;

  // The published ca-cert's notAfter while a valid generation is published (adopted or
  // written by this process). Thread-safe; lets a Vault batch end before it.
  std::optional<SystemTime> publishedNotAfter() const;

  // Held while a generation is written. A forced shutdown takes it before exiting, so it
  // never cuts a publish short.
  std::mutex& publishMutex() { return publish_mu_; }

 private:
  struct Current {
    ValidatedBundle bundle;  // as published; bundle.rootPem() is the root file byte for byte
    RootPhase phase = RootPhase::kNone;
    SystemTime renew_at;
  };
  struct Applied {
    bool published = false;   // a generation was written (or was already identical)
    bool renewed = false;     // the published ca-cert differs from the one before
    bool blocked = false;     // refused by the root policy (--istiod-multiroot=false)
    std::optional<SystemTime> deferred_until;  // the candidate waits for root propagation
    std::string note;
  };
  enum class Trigger { kScheduled, kForced, kRetry, kRootSwitch, kPoll, kRootCheck, kStartup };
  static std::string_view triggerName(Trigger trigger);

  void adopt();
  Status publishFirst(RotatorControl& control);
  void renew(Trigger trigger);
  // Clears the forced trigger right after a candidate was fetched: it is served by it.
  void foldRequestsServedByLoad();
  // renew(), serving a forced trigger still waiting for its turn too.
  void renewFolding(Trigger trigger);
  void takeRotateRequest(SystemTime now);
  void poll();
  void pollTrustSet();
  void rootCheck();
  // Applies the root policy to a candidate (whose roots and plan come with it) or, without
  // one, to a trust set read from the source.
  Result<Applied> apply(std::optional<CaMaterial> candidate, std::optional<TrustSet> trust);
  Result<Applied> publish(const ValidatedBundle& bundle, RootPhase phase);
  // Keeps the source's latest plan and, when it calls for a different signing root (at
  // next_switch, or now when the published intermediate is not under the signing root),
  // plans a renewal then plus a random delay. Called after any publish.
  void takeSchedule(const std::optional<RootSchedule>& schedule);
  void fail(const Error& error, std::string_view result);
  void confirmReload(const std::optional<ValidatedBundle>& before);
  void confirmStep();
  void confirmDone(ReloadVerdict verdict, const std::string& problem);
  // istiod refused a root change: republish the roots it last confirmed (confirmed_) and
  // act as if --istiod-multiroot=false for the rest of the process.
  void recoverRefusedRoots(const std::string& reason);
  void setCurrent(Current current, bool redraw_renewal);
  void updateMetrics();

  SystemTime renewalDue() const;
  SystemTime nextWake(SystemTime now) const;

  CaSource& source_;
  AtomicDirWriter& writer_;
  ReloadConfirmer& confirmer_;
  Metrics& metrics_;
  Clock& clock_;
  Random& random_;
  RotatorSettings settings_;
  RotatorControl* control_ = nullptr;
  Trigger trigger_ = Trigger::kStartup;  // what the step in progress was started by (for logs)

  std::optional<Current> current_;
  // The root file of an unusable generation found at start, and its certificates.
  std::string stale_roots_pem_;
  std::vector<Certificate> stale_roots_;
  int failures_ = 0;
  std::optional<SystemTime> retry_at_;
  std::optional<Error> fatal_;
  SystemTime next_poll_{};
  std::optional<std::string> last_stamp_;
  std::optional<std::vector<Certificate>> last_vault_roots_;
  std::optional<RootSchedule> schedule_;         // the source's latest plan
  std::optional<SystemTime> switch_renew_at_;    // a root switch plus this replica's random delay
  std::optional<SystemTime> switch_drawn_for_;   // the switch instant switch_renew_at_ was drawn for
  std::optional<SystemTime> root_check_at_;      // the root policy's next wake (a retirement)
  std::optional<SystemTime> last_renewal_;  // start of the last renewal (rate limit)
  std::optional<SystemTime> forced_at_;     // a forced renewal is requested for then
  struct PendingConfirm {
    SystemTime expected_not_after;
    ReloadExpectation expect;
    ValidatedBundle published;
    SystemTime deadline;
    SystemTime next_poll;
    ReloadProgress progress;
  };
  std::optional<PendingConfirm> confirm_;
  // The set istiod last proved it holds (a confirmed reload), or the adopted one (what
  // istiod read at its start); its root file is what istiod compares reloads with.
  std::optional<ValidatedBundle> confirmed_;
  int unconfirmed_publishes_ = 0;  // in a row: not_confirmed or refused

  std::mutex publish_mu_;
  mutable std::mutex status_mu_;
  std::optional<SystemTime> ready_until_;
};

}  // namespace cacerts
