// End-to-end: a fleet of istiod replicas rotating their root together. Three PKI sidecars
// with different renewal times and a replica that starts (init, then its sidecar) in the
// middle of the rotation share one Vault test server; a separate process,
// cacerts-fleet-checker, verifies throughout that every replica's chain verifies against
// every replica's root-cert.pem. The operator does only what docs/sidecar.md tells them:
// generate the new root through Vault's HTTP API, later delete the old issuer.
//
// With CACERTS_FLEET_REPORT set, each run appends one JSON line with its figures to that
// file (bench/fleet.sh).
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/background_process.h"
#include "tests/support/chain_verify.h"
#include "tests/support/e2e.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Seconds-long rotation: propagation long enough that the late replica starts inside it on
// two shared cores, poll interval short enough that every sidecar sees a change promptly.
constexpr seconds kPropagation{6};
constexpr seconds kRetire{4};
// File times come from the kernel's coarse clock, up to a scheduler tick behind the time
// the agent acted at.
constexpr milliseconds kCoarseMtime{20};
constexpr const char* kPropagationArg = "6s";
constexpr const char* kRetireArg = "4s";
constexpr const char* kPollArg = "1s";
constexpr milliseconds kPollSlack{1000 + 3000};  // one poll interval, plus a loaded machine
constexpr const char* kTtl = "8s";
// Renewal kTtl - renew_before after each publish: every 6, 4 and 2 s; the late replica 3 s.
const std::vector<std::string> kRenewBefore = {"2s", "4s", "6s"};
constexpr const char* kLateRenewBefore = "5s";
constexpr milliseconds kPhaseWait{30000};

// The operator's side: Vault's HTTP API over TLS with the root token, as the vault CLI uses it.
class VaultOperator {
 public:
  explicit VaultOperator(const VaultTestServer& server) : cli_("127.0.0.1", server.port()), token_(server.rootToken()) {
    X509_STORE* store = X509_STORE_new();  // owned by the client's SSL_CTX from here on
    X509_STORE_add_cert(store, server.ca().cert.x509.get());
    cli_.set_ca_cert_store(store);
    cli_.enable_server_certificate_verification(true);
    cli_.set_read_timeout(30, 0);  // root generation makes a key inside the request
  }
  // `vault write <path> key=value...`; REQUIREs success and returns `data`.
  nlohmann::json write(const std::string& path, const nlohmann::json& body) {
    const auto r = cli_.Post(("/v1/" + path).c_str(), headers(), body.dump(), "application/json");
    REQUIRE(r);
    INFO(path << " answered " << r->status << ": " << r->body);
    REQUIRE(r->status == 200);
    return nlohmann::json::parse(r->body)["data"];
  }
  // `vault delete <path>`; REQUIREs success.
  void remove(const std::string& path) {
    const auto r = cli_.Delete(("/v1/" + path).c_str(), headers());
    REQUIRE(r);
    INFO(path << " answered " << r->status << ": " << r->body);
    REQUIRE((r->status == 200 || r->status == 204));
  }

 private:
  httplib::Headers headers() const { return {{"X-Vault-Request", "true"}, {"X-Vault-Token", token_}}; }
  httplib::SSLClient cli_;
  std::string token_;
};

// A root as the operator generates it. notBefore is not backdated (Vault's default is 30 s),
// so that the seconds-long propagation is counted from the moment the root appeared.
nlohmann::json generateRoot(VaultOperator& op, const std::string& mount, const std::string& cn,
                            const std::string& name) {
  return op.write(mount + "/root/generate/internal", {{"common_name", cn},
                                                      {"ttl", "87600h"},
                                                      {"key_type", "ec"},
                                                      {"issuer_name", name},
                                                      {"not_before_duration", "0s"}});
}

// An intermediate issuer in int_mount (key inside Vault) signed by root_mount's issuer
// root_ref and set as signed, as HashiCorp's two-mount tutorial does it.
nlohmann::json generateIntermediateIssuer(VaultOperator& op, const std::string& int_mount,
                                          const std::string& root_mount, const std::string& root_ref,
                                          const std::string& cn) {
  const auto csr = op.write(int_mount + "/intermediate/generate/internal", {{"common_name", cn}, {"key_type", "ec"}});
  const auto signed_int = op.write(root_mount + "/issuer/" + root_ref + "/sign-intermediate",
                                   {{"csr", csr["csr"]}, {"format", "pem"}, {"ttl", "43800h"},
                                    {"not_before_duration", "0s"}});
  return op.write(int_mount + "/intermediate/set-signed", {{"certificate", signed_int["certificate"]}});
}

SystemTime mtimeOf(const struct stat& st) {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(seconds(st.st_mtim.tv_sec) +
                                                                     std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// One generation as published: the files of ..data's target, read once, and when they were
// written (the agent writes a generation once and never touches it again).
struct Generation {
  TestCert ca;
  std::vector<TestCert> chain;  // cert-chain.pem
  std::string roots;
  SystemTime written{};
};

std::optional<Generation> readGeneration(const TempDir& dir) {
  std::error_code ec;
  const auto target = std::filesystem::read_symlink(dir.file("..data"), ec);
  if (ec) return std::nullopt;
  const std::string gen = dir.path() + "/" + target.string();
  Generation g;
  g.ca = TestCert::fromPem(readFile(gen + "/ca-cert.pem"));
  g.chain = parseCertChain(readFile(gen + "/cert-chain.pem"));
  g.roots = readFile(gen + "/root-cert.pem");
  struct stat st {};
  if (g.ca.empty() || ::stat((gen + "/ca-cert.pem").c_str(), &st) != 0) return std::nullopt;  // cleaned up meanwhile
  g.written = mtimeOf(st);
  return g;
}

// The published intermediate chains to `root` (directly, or through a pki_int issuer).
bool chainsTo(const Generation& g, const TestCert& root) {
  return !g.ca.empty() && !root.empty() && !verifyToRoots(g.ca, g.chain, {root}).has_value();
}

struct Replica {
  std::string name;
  TempDir out;
  FakeIstiod istiod{out.path()};
  std::unique_ptr<BackgroundProcess> agent;
  bool watched = false;  // published something the rotation's checks apply to
  // First observations during the rotation (the generation's write time, not the poll's).
  std::optional<SystemTime> new_roots_at, switched_at, retired_at;
};

// The trust layout under test: where roots live, which endpoint signs, and what the operator
// does to rotate.
struct Layout {
  std::string name;
  std::string root_mount, int_mount;  // equal for the one-mount layout
  bool two_mount() const { return root_mount != int_mount; }
};

struct Fleet {
  E2eVault vault;
  VaultOperator op{vault.server()};
  Layout layout;
  std::string token_file;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::string r1_id, i1_id;  // the old root (and in two mounts, the old intermediate issuer)
  TestCert r1;

  explicit Fleet(Layout l) : layout(std::move(l)) {
    auto& s = vault.server();
    REQUIRE(s.enablePki("", layout.root_mount, std::chrono::hours(87600)));
    if (layout.two_mount()) REQUIRE(s.enablePki("", layout.int_mount, std::chrono::hours(87600)));
    const auto root = op.write(layout.root_mount + "/root/generate/internal",
                               {{"common_name", "Mesh Root R1"}, {"ttl", "87600h"}, {"key_type", "ec"},
                                {"issuer_name", "root-r1"}});
    r1_id = root["issuer_id"].get<std::string>();
    r1 = TestCert::fromPem(root["certificate"].get<std::string>());
    if (layout.two_mount()) {
      const auto set = generateIntermediateIssuer(op, layout.int_mount, layout.root_mount, r1_id, "Mesh Issuer I1");
      i1_id = set["imported_issuers"][0].get<std::string>();
    }
    REQUIRE(s.setPolicy("", "signer",
                        {{layout.root_mount + "/*", {"create", "read", "update", "list"}},
                         {layout.int_mount + "/*", {"create", "read", "update", "list"}}}));
    token_file = vault.tokenFile({"signer"});
  }

  // What init and sidecar both take: the source, and the root plan's propagation time.
  std::vector<std::string> pkiFlags() const {
    std::vector<std::string> flags = {"--source", "pki", "--pki-sign-path", layout.int_mount + "/root/sign-intermediate",
                                      "--ttl", kTtl, "--root-propagation", kPropagationArg};
    if (layout.two_mount()) flags = concat(flags, {"--pki-root-mount", layout.root_mount});
    return flags;
  }

  Replica& add(const std::string& name) {
    replicas.push_back(std::make_unique<Replica>());
    replicas.back()->name = name;
    return *replicas.back();
  }

  void startSidecar(Replica& r, const std::string& renew_before) {
    r.agent = startAgent(concat(sidecarArgs(vault, r.out, r.istiod, {"--auth-method", "token", "--token-file", token_file}),
                                concat(pkiFlags(), {"--istiod-multiroot", "--root-retire", kRetireArg,
                                                    "--pki-poll-interval", kPollArg, "--renew-before", renew_before,
                                                    "--renew-fraction", "0.99"})));
    const bool started = r.agent->waitForErr("event=sidecar_started", kSidecarWait);
    INFO(r.name << " exit " << r.agent->wait(milliseconds(0)).value_or(-1) << "; stderr: " << r.agent->err());
    REQUIRE(started);
  }

  ProcessResult init(Replica& r) {
    return vault.run(concat(concat({"init", "--dir", r.out.path()}, vault.connectArgs()),
                            concat({"--auth-method", "token", "--token-file", token_file, "--common-name", r.name,
                                    "--min-remaining", "1s"},
                                   pkiFlags())));
  }

  // Polls every replica's published generation until `done` holds for all of them.
  template <class F>
  bool watchUntil(F done, milliseconds timeout) {
    return eventually(
        [&] {
          bool all = true;
          for (auto& r : replicas) {
            if (!r->watched) continue;
            const auto g = readGeneration(r->out);
            all = all && g && done(*r, *g);
          }
          return all;
        },
        timeout);
  }
};

// REQUIRE with every agent's output so far: a phase that does not come says why.
void require(const Fleet& f, bool ok, const std::string& what) {
  if (ok) return;
  std::string all;
  for (const auto& r : f.replicas) {
    if (r->agent) all += "--- " + r->name + ":\n" + r->agent->err();
  }
  FAIL(what << "\n" << all);
}

void runRotation(Fleet& f) {
  TempDir control;
  const std::string stop_file = control.file("stop");
  std::vector<std::string> names = {"replica-a", "replica-b", "replica-c", "replica-late"};
  for (const auto& n : names) f.add(n);
  std::vector<std::string> checker_args = {"--stop-file", stop_file, "--pause", "20ms"};
  for (const auto& r : f.replicas) checker_args = concat(checker_args, {"--dir", r->out.path()});
  BackgroundProcess checker(CACERTS_FLEET_CHECKER_BINARY, checker_args);
  REQUIRE(checker.waitForErr("event=checker_started", kSidecarWait));

  // Three replicas renewing on their own schedules under R1.
  for (std::size_t i = 0; i < 3; ++i) {
    f.startSidecar(*f.replicas[i], kRenewBefore[i]);
    f.replicas[i]->watched = true;
  }
  Replica& late = *f.replicas[3];
  // Each has renewed at least once on its own schedule.
  for (std::size_t i = 0; i < 3; ++i) {
    require(f, f.replicas[i]->agent->waitForErr("event=published ", kSidecarWait, 2), "a sidecar did not renew");
  }
  const std::string r1_pem = f.r1.pem();
  require(f, f.watchUntil([&](Replica&, const Generation& g) { return g.roots == r1_pem && chainsTo(g, f.r1); },
                          kSidecarWait),
          "the sidecars did not publish R1 with an intermediate under it");

  // The operator generates R2 (and in two mounts an intermediate issuer under it); nothing else.
  const auto r2_data = generateRoot(f.op, f.layout.root_mount, "Mesh Root R2", "root-r2");
  const TestCert r2 = TestCert::fromPem(r2_data["certificate"].get<std::string>());
  const std::string r2_id = r2_data["issuer_id"].get<std::string>();
  if (f.layout.two_mount()) generateIntermediateIssuer(f.op, f.layout.int_mount, f.layout.root_mount, r2_id, "Mesh Issuer I2");
  const SystemTime generated = std::chrono::system_clock::now();
  const SystemTime switch_at = r2.notBefore() + kPropagation;
  const std::string both = r1_pem + r2.pem();

  // Every sidecar appends R2 within a poll interval (still signing under R1: see the switch).
  require(f, f.watchUntil(
      [&](Replica& r, const Generation& g) {
        if (g.roots == both && !r.new_roots_at) r.new_roots_at = g.written;
        return r.new_roots_at.has_value();
      },
      kPhaseWait), "the sidecars did not append R2");
  for (const auto& r : f.replicas) {
    if (!r->watched) continue;
    INFO(r->name);
    CHECK(*r->new_roots_at - generated < kPollSlack);
  }

  // A replica starts inside the propagation window: init publishes the same plan, R1 signing.
  REQUIRE(std::chrono::system_clock::now() < switch_at);
  const ProcessResult init = f.init(late);
  INFO("late init: " << init.err);
  REQUIRE(init.exit_code == 0);
  CHECK(readFile(late.out.file("root-cert.pem")) == both);
  const std::optional<Generation> late_generation = readGeneration(late.out);
  REQUIRE(late_generation);
  CHECK(chainsTo(*late_generation, f.r1));
  CHECK(std::chrono::system_clock::now() < switch_at);  // otherwise the line above proves less
  f.startSidecar(late, kLateRenewBefore);
  late.watched = true;

  // At the switch every replica renews under R2, never before it.
  require(f, f.watchUntil(
      [&](Replica& r, const Generation& g) {
        if (chainsTo(g, r2) && !r.switched_at) r.switched_at = g.written;
        return r.switched_at.has_value() && g.roots == both;
      },
      kPhaseWait), "the replicas did not switch to R2");
  for (const auto& r : f.replicas) {
    INFO(r->name);
    CHECK(*r->switched_at >= switch_at - kCoarseMtime);
    CHECK(*r->switched_at - switch_at < kPollSlack + seconds(2));
  }

  // The operator deletes the old issuer(s); R1 leaves every bundle from the front, only after
  // --root-retire past the switch.
  f.op.remove(f.layout.root_mount + "/issuer/" + f.r1_id);
  if (f.layout.two_mount()) f.op.remove(f.layout.int_mount + "/issuer/" + f.i1_id);
  require(f, f.watchUntil(
      [&](Replica& r, const Generation& g) {
        if (g.roots == r2.pem() && !r.retired_at) r.retired_at = g.written;
        return r.retired_at.has_value() && chainsTo(g, r2);
      },
      kPhaseWait), "R1 did not leave the bundles");
  for (const auto& r : f.replicas) {
    INFO(r->name << " retired " << std::chrono::duration_cast<milliseconds>(*r->retired_at - switch_at).count()
                  << " ms after the switch");
    CHECK(*r->retired_at >= switch_at + kRetire - kCoarseMtime);
  }
  std::this_thread::sleep_for(milliseconds(500));  // a few more rounds on the final state

  writeFile(stop_file, "");
  const auto code = checker.wait(kSidecarWait);
  INFO("checker: " << checker.err());
  REQUIRE(code);
  const std::string out = checker.out();
  const auto summary = nlohmann::json::parse(out.substr(0, out.find('\n')), nullptr, false);
  INFO("checker summary: " << out);
  REQUIRE(summary.is_object());
  CHECK(summary["violations"] == 0);
  CHECK(summary["unreadable_reads"] == 0);
  CHECK(summary["malformed_reads"] == 0);
  CHECK(summary["checks"].get<long>() >= 1000);
  CHECK(*code == 0);

  long publishes = 0;
  for (const auto& r : f.replicas) {
    publishes += static_cast<long>(r->agent->count("event=published "));
    r->agent->signal(SIGTERM);
    const auto exit = r->agent->wait(kSidecarWait);
    REQUIRE(exit);
    CHECK(*exit == 0);
    scanOutput(*r->agent);
    CHECK(runAgent({"check", "--dir", r->out.path(), "--min-remaining", "1s"}).exit_code == 0);
  }
  f.vault.scanForSecrets();

  if (const char* report = std::getenv("CACERTS_FLEET_REPORT")) {
    std::ofstream(report, std::ios::app) << nlohmann::json{{"layout", f.layout.name},
                                                           {"replicas", f.replicas.size()},
                                                           {"root_rotations", 1},
                                                           {"publishes", publishes},
                                                           {"rounds", summary["rounds"]},
                                                           {"checks", summary["checks"]},
                                                           {"violations", summary["violations"]},
                                                           {"seconds", summary["seconds"]}}
                                                .dump()
                                         << "\n";
  }
}

}  // namespace

TEST_CASE("fleet checker counts a pair that does not trust each other and skips an empty directory", "[fleet]") {
  const TestCa root_a = makeRoot("Fleet Root A"), root_b = makeRoot("Fleet Root B");
  const TestCa inter_a = makeIntermediate(root_a, "Fleet Intermediate A");
  const TestCa inter_a2 = makeIntermediate(root_a, "Fleet Intermediate A2");
  const TestCa inter_b = makeIntermediate(root_b, "Fleet Intermediate B");
  TempDir a, b, empty;
  layOutGeneration(a, inter_a.cert.pem(), inter_a.key.pkcs8Pem(), inter_a.cert.pem() + root_a.cert.pem(),
                   root_a.cert.pem());
  bool disjoint = false;
  SECTION("replicas of one root, one of them with both roots: no violation") {
    layOutGeneration(b, inter_a2.cert.pem(), inter_a2.key.pkcs8Pem(), inter_a2.cert.pem() + root_a.cert.pem(),
                     root_a.cert.pem() + root_b.cert.pem());
  }
  SECTION("replicas of different roots: both directions are violations, each replica trusts itself") {
    layOutGeneration(b, inter_b.cert.pem(), inter_b.key.pkcs8Pem(), inter_b.cert.pem() + root_b.cert.pem(),
                     root_b.cert.pem());
    disjoint = true;
  }
  const ProcessResult r = runProcess(CACERTS_FLEET_CHECKER_BINARY,
                                     {"--dir", a.path(), "--dir", b.path(), "--dir", empty.path(), "--duration", "300ms"});
  INFO(r.err << r.out);
  const auto summary = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')), nullptr, false);
  REQUIRE(summary.is_object());
  const long rounds = summary["rounds"].get<long>();
  CHECK(rounds > 0);
  CHECK(summary["checks"].get<long>() == 4 * rounds);  // (a,a) (a,b) (b,a) (b,b); the empty one skipped
  CHECK(summary["unpopulated_reads"].get<long>() == rounds);
  if (disjoint) {
    CHECK(r.exit_code == 1);
    CHECK(summary["violations"].get<long>() == 2 * rounds);
    const auto& first = summary["first_violations"].at(0);
    CHECK(first["a"] == a.path());
    CHECK(first["b"] == b.path());
    CHECK(first["a_ca_serial"] == inter_a.cert.serialColonHex());
    CHECK(first["b_root_serials"] == root_b.cert.serialColonHex());
    CHECK_THAT(r.err, Catch::Contains("event=violation a=" + a.path() + " b=" + b.path()));
  } else {
    CHECK(r.exit_code == 0);
    CHECK(summary["violations"] == 0);
  }
  CHECK(r.out.find("PRIVATE KEY") == std::string::npos);
  CHECK(r.err.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("fleet of PKI sidecars and a late init rotates one mount's root, every chain trusted by every replica",
          "[fleet][e2e]") {
  Fleet f(Layout{"one mount", "pki", "pki"});
  runRotation(f);
}

TEST_CASE("fleet rotates a two-mount layout (--pki-root-mount), every chain trusted by every replica",
          "[fleet][e2e]") {
  Fleet f(Layout{"two mounts", "pki", "pki_int"});
  runRotation(f);
}

}  // namespace cacerts::testing
