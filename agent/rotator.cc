#include "agent/rotator.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/agent_metrics.h"
#include "agent/layout.h"

namespace cacerts {
namespace {

constexpr Duration kMinPollInterval{100};
// The longest random delay of a root switch renewal (and at most --root-retire/4).
constexpr Duration kMaxSwitchDelay = std::chrono::minutes(1);

bool sameRoots(const std::vector<Certificate>& a, const std::vector<Certificate>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](const Certificate& x, const Certificate& y) { return x.sameAs(y); });
}

bool sameSecond(SystemTime a, SystemTime b) {
  return std::chrono::duration_cast<std::chrono::seconds>(a - b).count() == 0;
}

// What istiod's gauges can show of `now` replacing what istiod last confirmed (the set
// published before when none is known), and whether its roots differ from the confirmed.
ReloadExpectation expectationFor(const ValidatedBundle& now, const std::optional<ValidatedBundle>& published_before,
                                 const std::optional<ValidatedBundle>& confirmed) {
  const std::optional<ValidatedBundle>& before = confirmed ? confirmed : published_before;
  ReloadExpectation e;
  e.chain_not_after = now.info().not_after;
  e.chain_changed = !before || !sameSecond(before->info().not_after, e.chain_not_after);
  if (!now.roots.empty()) {
    const SystemTime first = now.roots.front().info().not_after;
    if (!before || before->roots.empty() || !sameSecond(before->roots.front().info().not_after, first)) {
      e.first_root_not_after = first;
    }
  }
  e.roots_changed = confirmed && confirmed->rootPem() != now.rootPem();
  return e;
}

}  // namespace

Rotator::Rotator(CaSource& source, AtomicDirWriter& writer, ReloadConfirmer& confirmer, Metrics& metrics,
                 Clock& clock, Random& random, RotatorSettings settings)
    : source_(source),
      writer_(writer),
      confirmer_(confirmer),
      metrics_(metrics),
      clock_(clock),
      random_(random),
      settings_(std::move(settings)) {
  // A zero interval would poll Vault in a tight loop.
  settings_.poll_interval = std::max(settings_.poll_interval, kMinPollInterval);
}

std::string_view Rotator::triggerName(Trigger trigger) {
  switch (trigger) {
    case Trigger::kScheduled: return "scheduled";
    case Trigger::kForced: return "forced";
    case Trigger::kRetry: return "retry";
    case Trigger::kRootSwitch: return "root_switch";
    case Trigger::kPoll: return "poll";
    case Trigger::kRootCheck: return "root_check";
    case Trigger::kStartup: return "startup";
  }
  return "unknown";
}

Status Rotator::run(RotatorControl& control) {
  control_ = &control;
  adopt();
  if (!current_) {
    RETURN_IF_ERROR(publishFirst(control));
    if (!current_) return ok();  // stopped before anything was published
    last_renewal_ = clock_.now();  // it minted a certificate: it counts for the rate limit
  }
  // A PKI sidecar looks at the trust set at once: after a restart it is the only way to
  // learn where a rotation stands. A KV one has just read everything.
  next_poll_ = clock_.now() + (settings_.poll_always ? settings_.poll_interval : Duration::zero());
  for (;;) {
    if (control.stop.load()) {
      // Said once, so that every publish ends in exactly one confirmation event.
      if (confirm_) {
        spdlog::info("event=reload_confirm_interrupted not_after={} polls={}",
                     formatTime(confirm_->expected_not_after), confirm_->progress.polls);
      }
      return ok();
    }
    if (fatal_) return *fatal_;
    const SystemTime now = clock_.now();
    takeRotateRequest(now);
    if (forced_at_ && now >= *forced_at_) {
      renewFolding(Trigger::kForced);
      continue;
    }
    if (now >= renewalDue()) {
      const bool switching = !retry_at_ && switch_renew_at_ && now >= *switch_renew_at_;
      renewFolding(retry_at_ ? Trigger::kRetry : switching ? Trigger::kRootSwitch : Trigger::kScheduled);
      continue;
    }
    if (root_check_at_ && now >= *root_check_at_) {
      rootCheck();
      continue;
    }
    if (now >= next_poll_) {
      poll();
      continue;
    }
    if (confirm_ && now >= confirm_->next_poll) {
      confirmStep();
      continue;
    }
    updateMetrics();
    // On the wall clock: every deadline above is a wall-clock time, and a step forward
    // (suspend/resume, NTP) must bring them closer, not leave a steady sleep running.
    clock_.sleepUntil(nextWake(now));
  }
}

void Rotator::takeRotateRequest(SystemTime now) {
  if (!control_->rotate.exchange(false) || forced_at_) return;  // coalesced into the pending one
  SystemTime at = now;
  if (last_renewal_ && settings_.rotate_min_interval > Duration::zero()) {
    at = std::max(at, *last_renewal_ + settings_.rotate_min_interval);
  }
  forced_at_ = at;
  if (at > now) {
    spdlog::info("event=rotate_deferred until={} message=\"forced renewals start at most once per "
                 "--rotate-min-interval\"",
                 formatTime(at));
  }
}

void Rotator::renewFolding(Trigger trigger) {
  last_renewal_ = clock_.now();
  // This renewal loads under whichever root signs now; its plan says what comes next.
  switch_renew_at_.reset();
  switch_drawn_for_.reset();
  // This renewal serves a forced request still waiting for its turn too.
  forced_at_.reset();
  renew(trigger);
}

void Rotator::foldRequestsServedByLoad() {
  // A request that arrived before the candidate was fetched is served by it. One that
  // arrives later (even while this renewal is still validating or writing) asks for newer
  // material than this renewal has, so it stays for the loop, under the rate limit.
  if (control_->rotate.exchange(false)) {
    spdlog::info("event=rotate_folded trigger={} message=\"rotation requested while a renewal ran; served by it\"",
                 triggerName(trigger_));
  }
}

Readiness Rotator::readiness() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  if (!ready_until_) return {false, "no valid generation published yet"};
  if (clock_.now() >= *ready_until_) {
    return {false, "the published ca-cert expired at " + formatTime(*ready_until_)};
  }
  return {true, ""};
}

std::optional<SystemTime> Rotator::publishedNotAfter() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return ready_until_;
}

void Rotator::adopt() {
  Layout layout = Layout::kIstio;
  Result<CaMaterial> published = readPublished(writer_, layout);
  if (!published) {
    if (published.error().code == ErrorCode::kNotFound) {
      spdlog::info("event=nothing_published dir={}", writer_.dir());
    } else {
      spdlog::warn("event=published_unusable dir={} action=replace error=\"{}\"", writer_.dir(),
                   published.error().message);
    }
    return;
  }
  ValidationOptions options = settings_.validation;
  options.now = clock_.now();
  options.min_remaining = Duration::zero();  // only "valid now": renewal time decides the rest
  Result<ValidatedBundle> bundle = assembleAndValidate(*published, options);
  if (!bundle) {
    spdlog::warn("event=published_invalid dir={} action=replace error=\"{}\"", writer_.dir(), bundle.error().message);
    // Unusable material is still what istiod holds: its root bytes are worth keeping.
    stale_roots_pem_ = published->root_pem;
    Result<std::vector<Certificate>> stale = parseCertificates(stale_roots_pem_, "root bundle");
    if (stale) stale_roots_ = std::move(stale).value();
    return;
  }
  bundle->root_file = published->root_pem;  // byte for byte, as istiod holds it
  confirmed_ = *bundle;
  const RootPhase phase = phaseOf(bundle->roots, bundle->anchor());
  setCurrent(Current{std::move(bundle).value(), phase, {}}, /*redraw_renewal=*/true);
  metrics_.setGauge(kMetricLastSuccess, epochSeconds(clock_.now()));
  const auto generation = writer_.currentGeneration();
  spdlog::info("event=adopted dir={} generation={} layout={} serial={} not_after={} renew_at={} root_phase={}",
               writer_.dir(), generation ? *generation : std::string("?"), toString(layout), current_->bundle.info().serial_hex,
               formatTime(current_->bundle.info().not_after), formatTime(current_->renew_at),
               toString(current_->phase));
}

Status Rotator::publishFirst(RotatorControl& control) {
  trigger_ = Trigger::kStartup;
  const SystemTime deadline = clock_.now() + settings_.startup_timeout;
  for (int attempt = 0;; ++attempt) {
    if (control.stop.load()) return ok();
    Result<Applied> applied = [&]() -> Result<Applied> {
      ASSIGN_OR_RETURN(CaMaterial material, source_.load());
      foldRequestsServedByLoad();  // a first publish is already happening
      return apply(std::move(material), std::nullopt);
    }();
    if (applied && current_) {
      metrics_.incCounter(kMetricRotations, {{"result", "success"}});
      metrics_.setGauge(kMetricLastSuccess, epochSeconds(clock_.now()));
      return ok();
    }
    const Error error = applied ? Error{ErrorCode::kValidation, applied->note.empty() ? "nothing could be published"
                                                                                      : applied->note}
                                : applied.error();
    metrics_.incCounter(kMetricRotations, {{"result", "failure"}});
    if (control.stop.load()) return ok();
    if (!isTransient(error.code)) return error;
    const SystemTime now = clock_.now();
    if (now >= deadline) {
      return Error{ErrorCode::kDeadlineExceeded,
                   error.message + " (nothing valid published within --timeout; gave up after " +
                       std::to_string(attempt + 1) + " attempts)"};
    }
    const Duration wait = capWait(backoffDelay(attempt, settings_.retry, random_.uniform01()), now, deadline);
    spdlog::warn("event=publish_failed trigger=startup attempt={} code={} retry_in_ms={} error=\"{}\"", attempt + 1,
                 toString(error.code), wait.count(), error.message);
    clock_.sleepFor(wait);
  }
}

void Rotator::renew(Trigger trigger) {
  trigger_ = trigger;
  spdlog::debug("event=renew_started trigger={}", triggerName(trigger));
  const bool due = clock_.now() >= renewalDue();
  Result<Applied> applied = [&]() -> Result<Applied> {
    ASSIGN_OR_RETURN(CaMaterial material, source_.load());
    foldRequestsServedByLoad();
    return apply(std::move(material), std::nullopt);
  }();
  if (!applied) {
    fail(applied.error(), "failure");
    return;
  }
  const Applied& a = *applied;
  if (a.renewed) {
    failures_ = 0;
    retry_at_.reset();
    const SystemTime now = clock_.now();
    metrics_.incCounter(kMetricRotations, {{"result", "success"}});
    metrics_.setGauge(kMetricLastSuccess, epochSeconds(now));
    if (current_->renew_at <= now) {
      // Vault issued something that is due at once (a TTL clamped to about --renew-before):
      // renewing in a tight loop would only mint more of them.
      retry_at_ = now + std::max(settings_.retry.initial, kMinBackoffDelay);
      spdlog::warn("event=renewal_due_at_once serial={} not_after={} retry_at={} message=\"the new certificate is "
                   "already due for renewal; its lifetime is too short for --renew-before/--renew-fraction\"",
                   current_->bundle.info().serial_hex, formatTime(current_->bundle.info().not_after), formatTime(*retry_at_));
    }
    updateMetrics();
    return;
  }
  if (a.deferred_until) {
    const SystemTime now = clock_.now();
    retry_at_ = std::min(*a.deferred_until, current_->bundle.info().not_after);
    if (a.published) metrics_.setGauge(kMetricLastSuccess, epochSeconds(now));
    metrics_.incCounter(kMetricRotations, {{"result", "deferred"}});
    spdlog::info("event=renew_deferred trigger={} until={} reason=\"{}\"", triggerName(trigger),
                 formatTime(*retry_at_), a.note);
    if (now >= current_->bundle.info().not_after) {
      fatal_ = Error{ErrorCode::kValidation, "the published ca-cert expired at " +
                                                 formatTime(current_->bundle.info().not_after) +
                                                 " while the next intermediate waited for root propagation; "
                                                 "--renew-before must exceed --root-propagation"};
    }
    updateMetrics();
    return;
  }
  if (a.blocked) {
    fail(Error{ErrorCode::kValidation, "root change refused: " + a.note}, "blocked");
    return;
  }
  if (!a.published) {
    fail(Error{ErrorCode::kValidation, a.note.empty() ? "nothing to publish" : a.note}, "failure");
    return;
  }
  // Vault handed back the certificate that is already published (a KV secret not yet
  // rotated by its owner).
  if (trigger == Trigger::kForced && !due) {
    spdlog::info("event=renew_unchanged trigger=forced source=\"{}\" serial={}", source_.describe(),
                 current_->bundle.info().serial_hex);
    return;
  }
  fail(Error{ErrorCode::kValidation, source_.describe() + " still holds the published certificate (serial " +
                                         current_->bundle.info().serial_hex + ", not_after " +
                                         formatTime(current_->bundle.info().not_after) +
                                         "), which is due for renewal; store a renewed one there"},
       "failure");
}

void Rotator::poll() {
  trigger_ = Trigger::kPoll;
  next_poll_ = clock_.now() + settings_.poll_interval;
  if (!settings_.poll_always) {
    pollTrustSet();
    return;
  }
  Result<std::optional<std::string>> stamp = source_.changeStamp();
  if (!stamp) {
    spdlog::warn("event=poll_failed source=\"{}\" code={} error=\"{}\"", source_.describe(),
                 toString(stamp.error().code), stamp.error().message);
    return;
  }
  if (stamp->has_value()) {
    if (last_stamp_ == *stamp) return;
    spdlog::info("event=source_changed source=\"{}\" first_check={}", source_.describe(), !last_stamp_.has_value());
    last_stamp_ = *stamp;
  }
  Result<CaMaterial> loaded = source_.load();
  if (!loaded) {
    last_stamp_.reset();  // look again at the next poll
    spdlog::warn("event=poll_failed source=\"{}\" code={} error=\"{}\"", source_.describe(),
                 toString(loaded.error().code), loaded.error().message);
    return;
  }
  Result<Applied> applied = apply(std::move(loaded).value(), std::nullopt);
  if (!applied) {
    // Not retried until the source changes again: the current generation stays valid.
    metrics_.incCounter(kMetricRotations, {{"result", "failure"}});
    spdlog::error("event=source_change_rejected source=\"{}\" code={} action=keep_current error=\"{}\"",
                  source_.describe(), toString(applied.error().code), applied.error().message);
    return;
  }
  if (applied->renewed) {
    failures_ = 0;
    retry_at_.reset();
    metrics_.incCounter(kMetricRotations, {{"result", "success"}});
    metrics_.setGauge(kMetricLastSuccess, epochSeconds(clock_.now()));
  } else if (applied->deferred_until && !retry_at_) {
    retry_at_ = std::min(*applied->deferred_until, current_->bundle.info().not_after);
  }
  updateMetrics();
}

void Rotator::pollTrustSet() {
  Result<TrustSet> trust = source_.trustSet();
  if (!trust) {
    spdlog::warn("event=poll_failed source=\"{}\" code={} error=\"{}\"", source_.describe(),
                 toString(trust.error().code), trust.error().message);
    return;
  }
  // Unchanged roots and plan: nothing to decide (a due retirement has its own wake).
  if (last_vault_roots_ && sameRoots(*last_vault_roots_, trust->roots) && schedule_ == trust->schedule) return;
  spdlog::info("event=trust_set_changed source=\"{}\" roots={} next_switch={}", source_.describe(),
               trust->roots.size(),
               trust->schedule && trust->schedule->next_switch ? formatTime(*trust->schedule->next_switch)
                                                               : std::string("none"));
  Result<Applied> applied = apply(std::nullopt, std::move(trust).value());
  if (!applied) {
    metrics_.incCounter(kMetricRotations, {{"result", "failure"}});
    spdlog::error("event=trust_set_rejected source=\"{}\" code={} action=keep_current error=\"{}\"",
                  source_.describe(), toString(applied.error().code), applied.error().message);
  }
  updateMetrics();
}

void Rotator::rootCheck() {
  trigger_ = Trigger::kRootCheck;
  root_check_at_.reset();
  std::optional<TrustSet> trust;
  if (last_vault_roots_) trust = TrustSet{*last_vault_roots_, schedule_};
  Result<Applied> applied = apply(std::nullopt, std::move(trust));
  if (!applied) {
    spdlog::error("event=root_check_failed code={} error=\"{}\"", toString(applied.error().code),
                  applied.error().message);
  }
  updateMetrics();
}

void Rotator::takeSchedule(const std::optional<RootSchedule>& schedule) {
  schedule_ = schedule;
  if (!schedule || !current_) return;
  const SystemTime now = clock_.now();
  std::optional<SystemTime> due = schedule->next_switch;
  if (!schedule->signing_root.empty() && schedule->signing_since <= now &&
      current_->bundle.anchor().info().sha256_fingerprint != schedule->signing_root) {
    due = now;  // the switch has passed (a restart, a missed poll): renew now
  }
  if (!due || switch_drawn_for_ == due) return;
  const Duration spread = std::min<Duration>(settings_.roots.retire / 4, kMaxSwitchDelay);
  const SystemTime at = *due + std::chrono::duration_cast<Duration>(spread * random_.uniform01());
  // An earlier pending switch renewal stands: only a renewal clears it.
  switch_renew_at_ = switch_renew_at_ ? std::min(*switch_renew_at_, at) : at;
  switch_drawn_for_ = due;
  spdlog::info("event=root_switch_planned at={} renew_at={}", formatTime(*due), formatTime(*switch_renew_at_));
}

Result<Rotator::Applied> Rotator::apply(std::optional<CaMaterial> candidate, std::optional<TrustSet> trust) {
  const SystemTime now = clock_.now();
  RootInputs in;
  in.now = now;
  if (current_) {
    in.published_pem = current_->bundle.rootPem();
    in.published = current_->bundle.roots;
    in.current_anchor = current_->bundle.anchor();
  } else if (!stale_roots_pem_.empty()) {
    in.published_pem = stale_roots_pem_;
    in.published = stale_roots_;
  }
  // The candidate must be valid as Vault gave it before any root policy applies; it is
  // validated once here, and only its root file changes below.
  std::optional<ValidatedBundle> validated;
  if (candidate) {
    ValidationOptions options = settings_.validation;
    options.now = now;
    options.min_remaining = settings_.min_remaining;
    ASSIGN_OR_RETURN(validated, assembleAndValidate(*candidate, options));
    in.candidate_anchor = validated->anchor();
    trust = TrustSet{validated->roots, candidate->schedule};
  }
  if (trust) {
    last_vault_roots_ = trust->roots;
    in.vault = trust->roots;
    in.schedule = trust->schedule;
  } else {
    in.vault = last_vault_roots_;
    in.schedule = schedule_;
  }

  const RootDecision d = decideRoots(in, settings_.roots);
  metrics_.setGauge(kMetricRootChangeBlocked, d.blocked ? 1.0 : 0.0);
  if (d.blocked) {
    spdlog::error("event=root_change_blocked trigger={} action={} message=\"{}\"", triggerName(trigger_),
                  toString(d.action), d.note);
  } else if (!d.note.empty()) {
    spdlog::info("event=root_decision trigger={} action={} phase={} message=\"{}\"", triggerName(trigger_),
                 toString(d.action), toString(d.phase), d.note);
  }
  root_check_at_ = d.candidate_deferred ? std::nullopt : d.wake;

  Applied out;
  switch (d.action) {
    case RootAction::kKeepCurrent:
      if (current_) current_->phase = d.phase;
      break;
    case RootAction::kPublishCandidate: {
      ASSIGN_OR_RETURN(ValidatedBundle bundle, withRootFile(std::move(validated).value(), d.roots_pem, now));
      ASSIGN_OR_RETURN(out, publish(bundle, d.phase));
      break;
    }
    case RootAction::kPublishCurrent: {
      // Already published and still valid: only the roots change.
      ASSIGN_OR_RETURN(ValidatedBundle bundle, withRootFile(current_->bundle, d.roots_pem, now));
      ASSIGN_OR_RETURN(out, publish(bundle, d.phase));
      break;
    }
  }
  if (trust) takeSchedule(trust->schedule);
  out.blocked = d.blocked;
  out.note = d.note;
  if (d.candidate_deferred) out.deferred_until = d.wake;
  return out;
}

Result<Rotator::Applied> Rotator::publish(const ValidatedBundle& bundle, RootPhase phase) {
  BundleText text;
  std::vector<OutputFile> files = filesFor(bundle, settings_.layout, settings_.key_mode, text);
  PublishResult result;
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    ASSIGN_OR_RETURN(result, writer_.publish(files, allLayoutNames()));
  }

  Applied out;
  out.published = true;
  out.renewed = !current_ || current_->bundle.info().sha256_fingerprint != bundle.info().sha256_fingerprint;
  const RootPhase phase_before = current_ ? current_->phase : RootPhase::kNone;

  ValidatedBundle published = bundle;
  published.root_file = std::move(text.root);
  std::optional<ValidatedBundle> before;
  if (current_) before = current_->bundle;
  setCurrent(Current{std::move(published), phase, {}}, /*redraw_renewal=*/out.renewed);

  // An unchanged publish (a poll that found the same material) is routine: debug only.
  spdlog::log(result.changed ? spdlog::level::info : spdlog::level::debug,
              "event=published trigger={} dir={} generation={} changed={} serial={} not_after={} renew_at={} "
              "roots={} root_phase={}",
              triggerName(trigger_), writer_.dir(), result.generation, result.changed,
              current_->bundle.info().serial_hex, formatTime(current_->bundle.info().not_after),
              formatTime(current_->renew_at), current_->bundle.roots.size(), toString(phase));
  if (phase != phase_before) spdlog::info("event=root_phase phase={} name={}", static_cast<int>(phase), toString(phase));
  if (result.changed) confirmReload(before);
  return out;
}

void Rotator::fail(const Error& error, std::string_view result) {
  // An interrupted shutdown makes the call in flight fail; that is not worth a retry.
  if (control_ != nullptr && control_->stop.load()) return;
  ++failures_;
  metrics_.incCounter(kMetricRotations, {{"result", std::string(result)}});
  const SystemTime now = clock_.now();
  const SystemTime expiry = current_->bundle.info().not_after;
  const Duration wait = capWait(backoffDelay(failures_ - 1, settings_.retry, random_.uniform01()), now, expiry);
  retry_at_ = now + wait;
  spdlog::warn("event=renew_failed trigger={} result={} code={} attempt={} retry_in_ms={} expires={} error=\"{}\"",
               triggerName(trigger_), result, toString(error.code), failures_, wait.count(), formatTime(expiry),
               error.message);
  if (now >= expiry) {
    fatal_ = Error{error.code, "the published ca-cert expired at " + formatTime(expiry) +
                                   " and no valid replacement could be published: " + error.message};
  }
  updateMetrics();
}

void Rotator::confirmReload(const std::optional<ValidatedBundle>& before) {
  if (!confirmer_.enabled()) return;
  const SystemTime now = clock_.now();
  if (confirm_) {
    metrics_.setGauge(kMetricReloadConfirmed, 0.0);
    spdlog::info("event=reload_confirm_superseded not_after={} polls={}", formatTime(confirm_->expected_not_after),
                 confirm_->progress.polls);
  }
  // Polled by the loop (confirmStep), first at once.
  const ValidatedBundle& published = current_->bundle;
  confirm_ = PendingConfirm{published.info().not_after, expectationFor(published, before, confirmed_), published,
                            now + confirmer_.timeout(), now, {}};
}

void Rotator::confirmStep() {
  PendingConfirm& c = *confirm_;
  confirmer_.scrape(c.deadline, c.progress);
  const SystemTime now = clock_.now();
  const ReloadJudgement j = judgeReload(c.expect, c.progress.seen, now >= c.deadline);
  if (j.verdict == ReloadVerdict::kPending) {
    c.next_poll = std::min(now + confirmer_.pollInterval(), c.deadline);
    return;
  }
  if (j.verdict == ReloadVerdict::kConfirmed) confirmed_ = c.published;
  const std::string problem = j.reason.empty() ? c.progress.last_problem : j.reason;
  confirmDone(j.verdict, problem);
  if (j.verdict == ReloadVerdict::kRefused) recoverRefusedRoots(problem);
}

void Rotator::confirmDone(ReloadVerdict verdict, const std::string& problem) {
  const PendingConfirm c = std::move(*confirm_);
  confirm_.reset();
  for (ReloadVerdict v : {ReloadVerdict::kConfirmed, ReloadVerdict::kUnverified, ReloadVerdict::kUnsupported,
                          ReloadVerdict::kNotConfirmed, ReloadVerdict::kRefused}) {
    metrics_.setGauge(kMetricReloadVerdict, {{"verdict", std::string(toString(v))}}, v == verdict ? 1.0 : 0.0);
  }
  metrics_.setGauge(kMetricReloadConfirmed, verdict == ReloadVerdict::kConfirmed ? 1.0 : 0.0);
  if (verdict == ReloadVerdict::kConfirmed) unconfirmed_publishes_ = 0;
  if (verdict == ReloadVerdict::kNotConfirmed || verdict == ReloadVerdict::kRefused) ++unconfirmed_publishes_;
  metrics_.setGauge(kMetricUnconfirmedPublishes, unconfirmed_publishes_);
  const std::string not_after = formatTime(c.expected_not_after);
  switch (verdict) {
    case ReloadVerdict::kPending: break;
    case ReloadVerdict::kConfirmed:
      spdlog::info("event=reload_confirmed not_after={} polls={}", not_after, c.progress.polls);
      break;
    case ReloadVerdict::kUnverified:
      spdlog::info("event=reload_unverified not_after={} reason=\"{}\" message=\"verified at the next ca-cert "
                   "change\"", not_after, problem);
      break;
    case ReloadVerdict::kUnsupported:
      spdlog::warn("event=reload_unsupported not_after={} polls={} reason=\"{}\" message=\"istiod before 1.24 "
                   "cannot show a reload in its metrics; check its log for 'Failed to update new Plug-in CA certs'\"",
                   not_after, c.progress.polls, problem);
      break;
    case ReloadVerdict::kNotConfirmed:
    case ReloadVerdict::kRefused:
      spdlog::warn("event=reload_not_confirmed not_after={} polls={} in_a_row={} problem=\"{}\" message=\"istiod "
                   "may still sign with the previous intermediate; check its log for 'Failed to update new Plug-in "
                   "CA certs'\"",
                   not_after, c.progress.polls, unconfirmed_publishes_, problem);
      break;
  }
}

void Rotator::recoverRefusedRoots(const std::string& reason) {
  metrics_.setGauge(kMetricIstiodRootChangeRefused, 1.0);
  // From now on a root change takes the blocked path (root_change_blocked).
  settings_.roots.multiroot = false;
  spdlog::error("event=istiod_root_change_refused reason=\"{}\" message=\"istiod refused the published root "
                "change and ignores every reload until root-cert.pem holds its roots again: run istiod with "
                "ISTIO_MULTIROOT_MESH=true, or this agent with --istiod-multiroot=false. Republishing the roots "
                "istiod last confirmed; root changes stay blocked until this sidecar restarts\"",
                reason);
  if (!confirmed_) {
    spdlog::error("event=istiod_recovery_failed reason=\"no set confirmed by istiod is known\"");
    return;
  }
  const std::string roots = confirmed_->rootPem();
  const SystemTime now = clock_.now();
  // The current intermediate if it chains to those roots, else a fresh one that does, else
  // the confirmed set itself (istiod still signs with it).
  std::string_view with = "current_intermediate";
  Result<ValidatedBundle> bundle = withRootFile(current_->bundle, roots, now);
  if (!bundle) {
    with = "fresh_candidate";
    Result<CaMaterial> loaded = source_.load();
    ValidationOptions options = settings_.validation;
    options.now = now;
    options.min_remaining = settings_.min_remaining;
    if (loaded) bundle = assembleAndValidate(*loaded, options);
    if (bundle) bundle = withRootFile(std::move(bundle).value(), roots, now);
  }
  if (!bundle) {
    with = "confirmed_set";
    bundle = withRootFile(*confirmed_, roots, now);
  }
  Result<Applied> published =
      bundle ? publish(*bundle, phaseOf(bundle->roots, bundle->anchor())) : Result<Applied>(bundle.error());
  if (!published) {
    spdlog::error("event=istiod_recovery_failed code={} error=\"{}\"", toString(published.error().code),
                  published.error().message);
    return;
  }
  spdlog::info("event=istiod_recovery_published with={} serial={} roots={}", with, current_->bundle.info().serial_hex,
               current_->bundle.roots.size());
}

void Rotator::setCurrent(Current current, bool redraw_renewal) {
  if (!redraw_renewal && current_) {
    current.renew_at = current_->renew_at;
  } else {
    current.renew_at = renewalTime(current.bundle.info().not_before, current.bundle.info().not_after, settings_.renewal,
                                   random_.uniform01());
  }
  current_ = std::move(current);
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    ready_until_ = current_->bundle.info().not_after;
  }
  updateMetrics();
}

void Rotator::updateMetrics() {
  if (!current_) return;
  metrics_.setGauge(kMetricCaCertExpiry, epochSeconds(current_->bundle.info().not_after));
  if (!current_->bundle.roots.empty()) {
    SystemTime earliest = SystemTime::max();
    for (const auto& r : current_->bundle.roots) earliest = std::min(earliest, r.info().not_after);
    metrics_.setGauge(kMetricRootCertExpiry, epochSeconds(earliest));
  }
  std::optional<SystemTime> crl_expiry;
  for (const Crl& crl : current_->bundle.crls) {
    const std::optional<SystemTime>& next = crl.info().next_update;
    if (next && (!crl_expiry || *next < *crl_expiry)) crl_expiry = next;
  }
  if (crl_expiry) metrics_.setGauge(kMetricCrlNextUpdate, epochSeconds(*crl_expiry));
  metrics_.setGauge(kMetricNextRenewal, epochSeconds(renewalDue()));
  metrics_.setGauge(kMetricRootRotationPhase, static_cast<double>(static_cast<int>(current_->phase)));
  metrics_.setGauge(kMetricConsecutiveFailures, failures_);
}

SystemTime Rotator::renewalDue() const {
  if (retry_at_) return *retry_at_;
  SystemTime due = current_->renew_at;
  if (switch_renew_at_) due = std::min(due, *switch_renew_at_);
  return due;
}

SystemTime Rotator::nextWake(SystemTime now) const {
  SystemTime wake = std::min(renewalDue(), next_poll_);
  if (root_check_at_) wake = std::min(wake, *root_check_at_);
  if (forced_at_) wake = std::min(wake, *forced_at_);
  if (confirm_) wake = std::min(wake, confirm_->next_poll);
  return std::max(wake, now);
}

}  // namespace cacerts
