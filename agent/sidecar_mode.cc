#include "agent/sidecar_mode.h"

#include <pthread.h>
#include <signal.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/agent_metrics.h"
#include "agent/migration_source.h"
#include "agent/publisher.h"
#include "agent/reload_confirm.h"
#include "agent/rotator.h"
#include "agent/status_server.h"
#include "agent/vault_session.h"
#include "common/idle_memory.h"

namespace cacerts {
namespace {

// How long a stop request waits for the loop before the process exits anyway. Below the
// 1 s promise, leaving room for the exit itself.
constexpr Duration kShutdownGrace{800};

// Low-cardinality names for cacerts_agent_vault_requests_total{operation}: the paths
// themselves carry issuer ids and secret names.
std::string vaultOperation(const std::string& call) {
  const auto space = call.find(' ');
  const std::string method = call.substr(0, space);
  std::string path = space == std::string::npos ? "" : call.substr(space + 1);
  path = path.substr(0, path.find('?'));
  const auto has = [&](std::string_view part) { return path.find(part) != std::string::npos; };
  const auto ends = [&](std::string_view tail) {
    return path.size() >= tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (path.rfind("auth/token/renew-self", 0) == 0) return "token_renew";
  if (path.rfind("auth/token/lookup-self", 0) == 0) return "token_lookup";
  if (path.rfind("auth/token/revoke-self", 0) == 0) return "token_revoke";
  if (path.rfind("auth/", 0) == 0 && ends("/login")) return "login";
  if (path.rfind("sys/internal/ui/mounts/", 0) == 0) return "mount_lookup";
  if (path.rfind("sys/mounts/", 0) == 0 && ends("/tune")) return "mount_tune";
  if (ends("sign-intermediate")) return "pki_sign";
  if (has("intermediate/generate/")) return "pki_generate";
  if (method == "LIST" && ends("/issuers")) return "pki_list_issuers";
  if (has("/issuer/") && ends("/json")) return "pki_read_issuer";
  if (has("/metadata/")) return "kv_metadata";
  return method == "GET" ? "read" : "write";
}

// Each renewal or poll is one batch of Vault calls: bound its retries and every request in
// it by --timeout and by the published ca-cert's expiry (a slow or trickling Vault must not
// keep the sidecar past notAfter), and look after the token just before it, never in
// between; close the Vault connection after it, so that no socket stays open while the
// sidecar idles between batches.
class VaultBatchSource final : public CaSource {
 public:
  VaultBatchSource(CaSource& inner, VaultClient& vault, HttpTransport& transport, Clock& clock,
                   Duration attempt_timeout)
      : inner_(inner), vault_(vault), transport_(transport), clock_(clock), attempt_timeout_(attempt_timeout) {}

  Result<CaMaterial> load() override { return batch([this] { return inner_.load(); }); }
  std::string describe() const override { return inner_.describe(); }
  // Where the published ca-cert's notAfter comes from (none until set).
  void setExpiry(std::function<std::optional<SystemTime>()> expiry) { expiry_ = std::move(expiry); }
  Result<std::optional<std::string>> changeStamp() override { return batch([this] { return inner_.changeStamp(); }); }
  Result<TrustSet> trustSet() override { return batch([this] { return inner_.trustSet(); }); }

 private:
  template <class Call>
  std::invoke_result_t<Call> batch(Call call) {
    begin();
    auto result = call();
    transport_.releaseConnection();
    return result;
  }

  void begin() {
    const SystemTime now = clock_.now();
    SystemTime deadline = now + attempt_timeout_;
    // Past notAfter the rotator gives up anyway; each attempt still gets its 1 s floor.
    if (const auto expiry = expiry_ ? expiry_() : std::nullopt; expiry && *expiry > now) {
      deadline = std::min(deadline, *expiry);
    }
    vault_.setRetryDeadline(deadline);
    // A failed renewal has already dropped the token; the batch logs in again.
    (void)vault_.refreshTokenIfExpiring();
  }

  CaSource& inner_;
  VaultClient& vault_;
  HttpTransport& transport_;
  Clock& clock_;
  Duration attempt_timeout_;
  std::function<std::optional<SystemTime>()> expiry_;
};

// The rotator's clock: before the loop sleeps for long (between renewals, polls and
// retries), gives back what the work since the last sleep left resident (see
// releaseIdleMemory). Short waits are left alone; no wake-up is added.
class ReleasingClock final : public Clock {
 public:
  explicit ReleasingClock(Clock& inner) : inner_(inner) {}
  SystemTime now() const override { return inner_.now(); }
  bool sleepFor(Duration d) override {
    if (d >= kLongSleep) releaseIdleMemory();
    return inner_.sleepFor(d);
  }
  // Forwarded, not left to the base class: the inner clock's wall-clock wait is what wakes
  // the loop at a clock step, with one wake-up per Clock::kWallRecheck at most. A sleep
  // toward the deadline of the previous one follows such a wake-up that found nothing due:
  // nothing ran since the last release, so it is not repeated every minute.
  bool sleepUntil(SystemTime deadline) override {
    if (deadline != last_deadline_ && deadline - inner_.now() >= kLongSleep) releaseIdleMemory();
    last_deadline_ = deadline;
    return inner_.sleepUntil(deadline);
  }
  void interrupt() override { inner_.interrupt(); }

 private:
  static constexpr Duration kLongSleep = std::chrono::seconds(5);
  Clock& inner_;
  SystemTime last_deadline_{};  // the rotator's thread only, like every sleep
};

// Tells the signal watcher that the process finished its own orderly shutdown.
class ShutdownLatch {
 public:
  void markDone() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }
  bool waitDone(Duration d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [this] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// Receives the blocked signals with sigwait on its own thread, so handlers are ordinary
// code (locks, logging) rather than async-signal-safe fragments.
class SignalWatcher {
 public:
  explicit SignalWatcher(const sigset_t& signals) : signals_(signals) {}
  ~SignalWatcher() { stop(); }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  void start(std::function<void(int)> on_signal) {
    thread_ = std::thread([this, on_signal = std::move(on_signal)] {
      for (;;) {
        int sig = 0;
        if (::sigwait(&signals_, &sig) != 0) continue;
        if (finishing_.load()) return;
        on_signal(sig);
      }
    });
  }

  void stop() {
    if (!thread_.joinable()) return;
    finishing_ = true;
    // SIGTERM is in the set, so it is delivered to sigwait, not to a default handler.
    ::pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  sigset_t signals_;
  std::atomic<bool> finishing_{false};
  std::thread thread_;
};

int failed(const Error& e) {
  const int code = exitCodeFor(e.code);
  spdlog::error("event=sidecar_failed code={} exit_code={} error=\"{}\"", toString(e.code), code, e.message);
  return code;
}

RotatorSettings rotatorSettings(const Config& config) {
  const SidecarSettings& s = config.sidecar;
  RotatorSettings r;
  r.renewal.renew_before = s.renew_before;
  r.renewal.renew_fraction = s.renew_fraction;
  r.renewal.jitter = s.jitter;
  r.retry.initial = s.retry_initial;
  r.retry.max = s.retry_max;
  r.roots.multiroot = s.istiod_multiroot;
  r.roots.propagation = s.root_propagation;
  r.roots.retire = s.root_retire;
  r.layout = config.layout;
  r.key_mode = config.key_mode;
  r.min_remaining = config.min_remaining;
  r.validation = validationOptionsFor(config, SystemTime{});
  r.poll_interval = config.source == Source::kKv ? s.kv_poll_interval : s.pki_poll_interval;
  r.poll_always = config.source == Source::kKv;
  r.startup_timeout = config.timeout;
  r.rotate_min_interval = s.rotate_min_interval;
  return r;
}

}  // namespace

int runSidecar(const Config& config, Clock& clock, Random& random) {
  // Before any thread exists, so that every thread inherits the mask and only the watcher
  // receives these signals.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  AtomicDirWriter writer(config.dir);
  if (Status prepared = prepareOutputDir(config, writer); !prepared) return failed(prepared.error());
  // Held until the process exits: a second sidecar (or an init) must not publish beside us.
  Result<DirLock> dir_lock = lockOutputDir(writer, "sidecar", clock);
  if (!dir_lock) return failed(dir_lock.error());
  Result<VaultSession> session = openVaultSession(config, clock, random);
  if (!session) return failed(session.error());
  Metrics metrics;
  registerAgentMetrics(metrics, CACERTS_VERSION);
  session->client->setObserver([&metrics](const std::string& operation, int status) {
    metrics.incCounter(kMetricVaultRequests,
                       {{"operation", vaultOperation(operation)}, {"code", status > 0 ? std::to_string(status) : "error"}});
  });
  Result<std::unique_ptr<CaSource>> source = makeSource(config, *session->client, clock);
  if (!source) return failed(source.error());
  VaultBatchSource batch(**source, *session->client, *session->transport, clock, config.timeout);

  ReloadConfirmOptions confirm_options;
  confirm_options.metrics_url = config.sidecar.istiod_metrics_url;
  confirm_options.timeout = config.sidecar.confirm_timeout;
  Result<std::unique_ptr<ReloadConfirmer>> confirmer = ReloadConfirmer::create(confirm_options, clock);
  if (!confirmer) return failed(confirmer.error());

  ReleasingClock rotator_clock(clock);
  Rotator rotator(batch, writer, **confirmer, metrics, rotator_clock, random, rotatorSettings(config));
  batch.setExpiry([&rotator] { return rotator.publishedNotAfter(); });
  RotatorControl control;
  StatusHandlers handlers;
  handlers.readiness = [&rotator] { return rotator.readiness(); };
  handlers.rotate = [&control, &clock] {
    control.rotate = true;
    clock.interrupt();
  };
  if (config.migrate_switch_at) {
    const SystemTime switch_at = *config.migrate_switch_at;
    const Duration retire = config.sidecar.root_retire;
    metrics.setGauge(kMetricMigrationSwitch, epochSeconds(switch_at));
    handlers.refresh_metrics = [&metrics, &clock, switch_at, retire] {
      metrics.setGauge(kMetricMigrationPhase,
                       static_cast<double>(static_cast<int>(migrationPhase(clock.now(), switch_at, retire))));
    };
    handlers.refresh_metrics();
  }
  StatusServer server(config.sidecar.listen, metrics, handlers);
  if (Status started = server.start(); !started) return failed(started.error());
  spdlog::info("event=sidecar_started listen={} port={} dir={} source=\"{}\" layout={} istiod_multiroot={} "
               "reload_confirmation={}",
               config.sidecar.listen, server.port(), config.dir, batch.describe(), toString(config.layout),
               config.sidecar.istiod_multiroot, (*confirmer)->enabled());

  if (config.source == Source::kKv && config.sidecar.istiod_multiroot &&
      config.sidecar.renew_before <= config.sidecar.root_propagation) {
    spdlog::warn("event=config_warning message=\"--renew-before should exceed --root-propagation: an intermediate "
                 "that comes due while a new root propagates is kept until the propagation ends\"");
  }

  ShutdownLatch shutdown;
  SignalWatcher watcher(signals);
  watcher.start([&](int sig) {
    if (sig == SIGHUP) {
      spdlog::info("event=rotate_requested source=SIGHUP");
      control.rotate = true;
      clock.interrupt();
      return;
    }
    spdlog::info("event=shutdown_requested signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    control.stop = true;
    clock.interrupt();
    if (shutdown.waitDone(kShutdownGrace)) return;
    // The loop is stuck in a call that cannot be interrupted (a slow Vault). Waiting for
    // the publish lock means a generation being written is finished first.
    std::lock_guard<std::mutex> lock(rotator.publishMutex());
    spdlog::warn("event=shutdown_forced grace_ms={} message=\"a Vault or istiod call was still in flight\"",
                 kShutdownGrace.count());
    std::_Exit(0);
  });

  const Status result = rotator.run(control);
  server.stop();
  // Before the shutdown latch: a Vault that hangs is still cut off by the forced exit.
  session->client->setRetryDeadline(clock.now() + std::chrono::seconds(2));
  (void)session->client->revokeToken();
  session->transport->releaseConnection();
  shutdown.markDone();
  watcher.stop();
  if (!result) return failed(result.error());
  spdlog::info("event=sidecar_stopped dir={}", config.dir);
  return 0;
}

int runRotate(const Config& config) {
  const Status s = requestRotate(config.sidecar.listen);
  if (!s) {
    const int code = exitCodeFor(s.error().code);
    spdlog::error("event=rotate_failed code={} exit_code={} error=\"{}\"", toString(s.error().code), code,
                  s.error().message);
    return code;
  }
  spdlog::info("event=rotate_accepted listen={}", config.sidecar.listen);
  return 0;
}

}  // namespace cacerts
