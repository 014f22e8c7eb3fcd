#include "tests/vault_server/vault_test_server.h"
#include "tests/vault_server/policy.h"

#include <httplib.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

using namespace cacerts::testing;
using cacerts::testing::json;

namespace {

using namespace std::chrono_literals;

std::unique_ptr<VaultTestServer> startServer(VaultTestServerOptions options = {}) {
  auto s = VaultTestServer::start(std::move(options));
  REQUIRE(s.has_value());
  return std::move(s).value();
}

// An HTTPS client that trusts the server's CA and sends what the agent sends.
class Client {
 public:
  explicit Client(const VaultTestServer& server, const TestCa* client_cert = nullptr)
      : cli_(client_cert ? httplib::SSLClient("127.0.0.1", server.port(), client_cert->cert.x509.get(),
                                              client_cert->key.pkey.get())
                         : httplib::SSLClient("127.0.0.1", server.port())) {
    X509_STORE* store = X509_STORE_new();  // owned by the client's SSL_CTX
    X509_STORE_add_cert(store, server.ca().cert.x509.get());
    cli_.set_ca_cert_store(store);
    cli_.enable_server_certificate_verification(true);
    cli_.set_read_timeout(5, 0);
  }
  httplib::Headers headers(const std::string& token = "", const std::string& ns = "") const {
    httplib::Headers h{{"X-Vault-Request", "true"}};
    if (!token.empty()) h.emplace("X-Vault-Token", token);
    if (!ns.empty()) h.emplace("X-Vault-Namespace", ns);
    return h;
  }
  httplib::Result get(const std::string& path, const std::string& token = "", const std::string& ns = "") {
    return cli_.Get(path.c_str(), headers(token, ns));
  }
  httplib::Result post(const std::string& path, const json& body, const std::string& token = "",
                       const std::string& ns = "") {
    return cli_.Post(path.c_str(), headers(token, ns), body.dump(), "application/json");
  }
  httplib::SSLClient& raw() { return cli_; }

 private:
  httplib::SSLClient cli_;
};

json bodyOf(const httplib::Result& r) {
  REQUIRE(r);
  const json j = json::parse(r->body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

int statusOf(const httplib::Result& r) {
  REQUIRE(r);
  return r->status;
}

std::string firstError(const httplib::Result& r) { return bodyOf(r)["errors"].at(0).get<std::string>(); }

std::string jwtFor(const std::string& ns, const std::string& name) {
  return makeUnsignedJwt({{"sub", "system:serviceaccount:" + ns + ":" + name},
                          {"kubernetes.io", {{"namespace", ns}, {"serviceaccount", {{"name", name}}}}}});
}

}  // namespace

TEST_CASE("vault server answers a KV v2 read with Vault's envelope", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableKv("", "secret", 2));
  REQUIRE(vault->setPolicy("", "reader", {{"secret/data/*", {"read"}}}));
  REQUIRE(vault->kvPut("", "secret", "istio/ca", {{"ca.crt", "CERT"}}).value() == 1);
  const std::string token = vault->createToken("", {.policies = {"reader"}});
  Client client(*vault);

  const auto r = client.get("/v1/secret/data/istio/ca", token);
  REQUIRE(r);
  CHECK(r->status == 200);
  const json j = bodyOf(r);
  CHECK(j["request_id"].is_string());
  CHECK(j["lease_id"] == "");
  CHECK(j["renewable"] == false);
  CHECK(j["lease_duration"] == 0);
  CHECK(j["wrap_info"].is_null());
  CHECK(j["warnings"].is_null());
  CHECK(j["auth"].is_null());
  CHECK(j["mount_type"] == "kv");
  CHECK(j["data"]["data"]["ca.crt"] == "CERT");
  CHECK(j["data"]["metadata"]["version"] == 1);
  CHECK(j["data"]["metadata"]["deletion_time"] == "");
  CHECK(j["data"]["metadata"]["destroyed"] == false);

  // Authorization: Bearer is equivalent to X-Vault-Token.
  const auto bearer = client.raw().Get("/v1/secret/data/istio/ca",
                                       {{"X-Vault-Request", "true"}, {"Authorization", "Bearer " + token}});
  REQUIRE(bearer);
  CHECK(bearer->status == 200);

  const auto log = vault->requests();
  REQUIRE(log.size() == 2);
  CHECK(log[0].method == "GET");
  CHECK(log[0].path == "/v1/secret/data/istio/ca");
  CHECK(log[0].token_sent);
  CHECK(log[0].status == 200);
}

TEST_CASE("vault server answers deleted, destroyed and v1-style KV v2 reads with 404 envelopes",
          "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableKv("", "secret", 2));
  REQUIRE(vault->kvPut("", "secret", "ca", {{"v", "one"}}));
  REQUIRE(vault->kvPut("", "secret", "ca", {{"v", "two"}}));
  REQUIRE(vault->kvPut("", "secret", "ca", {{"v", "three"}}));
  REQUIRE(vault->kvDeleteVersion("", "secret", "ca", 3));
  REQUIRE(vault->kvDestroyVersion("", "secret", "ca", 2));
  Client client(*vault);
  const std::string root = vault->rootToken();

  const auto deleted = client.get("/v1/secret/data/ca", root);
  REQUIRE(deleted);
  CHECK(deleted->status == 404);
  const json d = bodyOf(deleted);
  CHECK_FALSE(d.contains("errors"));
  CHECK(d["data"]["data"].is_null());
  CHECK(d["data"]["metadata"]["deletion_time"] != "");
  CHECK(d["data"]["metadata"]["version"] == 3);

  const auto destroyed = client.get("/v1/secret/data/ca?version=2", root);
  REQUIRE(destroyed);
  CHECK(destroyed->status == 404);
  CHECK(bodyOf(destroyed)["data"]["metadata"]["destroyed"] == true);

  const auto live = client.get("/v1/secret/data/ca?version=1", root);
  REQUIRE(live);
  CHECK(live->status == 200);
  CHECK(bodyOf(live)["data"]["data"]["v"] == "one");

  const auto meta = bodyOf(client.get("/v1/secret/metadata/ca", root));
  CHECK(meta["data"]["current_version"] == 3);
  CHECK(meta["data"]["versions"]["2"]["destroyed"] == true);

  const auto missing = client.get("/v1/secret/data/nothing", root);
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(missing->body == R"({"errors":[]})");

  const auto v1_style = client.get("/v1/secret/ca", root);
  REQUIRE(v1_style);
  CHECK(v1_style->status == 404);
  const json w = bodyOf(v1_style);
  CHECK_FALSE(w.contains("errors"));
  CHECK(w["warnings"].at(0).get<std::string>().rfind("Invalid path for a versioned K/V secrets engine", 0) == 0);
}

TEST_CASE("vault server denies by policy, token validity and the request header", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableKv("", "kv", 1));
  REQUIRE(vault->kvPut("", "kv", "allowed/x", {{"k", "v"}}));
  REQUIRE(vault->kvPut("", "kv", "other/x", {{"k", "v"}}));
  REQUIRE(vault->setPolicy("", "narrow", {{"kv/allowed/+", {"read"}}}));
  const std::string token = vault->createToken("", {.policies = {"narrow"}, .ttl_seconds = 60});
  Client client(*vault);

  const auto allowed = client.get("/v1/kv/allowed/x", token);
  REQUIRE(allowed);
  CHECK(allowed->status == 200);
  CHECK(bodyOf(allowed)["lease_duration"] == 768 * 3600);
  CHECK(bodyOf(allowed)["data"]["k"] == "v");

  const auto denied = client.get("/v1/kv/other/x", token);
  REQUIRE(denied);
  CHECK(denied->status == 403);
  CHECK_THAT(firstError(denied), Catch::Contains("permission denied"));

  const auto no_header = client.raw().Get("/v1/kv/allowed/x", {{"X-Vault-Token", token}});
  REQUIRE(no_header);
  CHECK(no_header->status == 412);
  CHECK(firstError(no_header) == "missing \"X-Vault-Request\" header");

  vault->advanceClock(61s);
  const auto expired = client.get("/v1/kv/allowed/x", token);
  REQUIRE(expired);
  CHECK(expired->status == 403);
  CHECK_THAT(firstError(expired), Catch::Contains("permission denied") && Catch::Contains("invalid token"));
}

TEST_CASE("vault server resolves mounts and namespaces like Vault", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableKv("team-a", "kv/cluster1", 2));
  REQUIRE(vault->setPolicy("team-a", "reader", {{"kv/cluster1/data/*", {"read"}}}));
  REQUIRE(vault->kvPut("team-a", "kv/cluster1", "ca", {{"k", "v"}}));
  const std::string token = vault->createToken("team-a", {.policies = {"reader"}});
  Client client(*vault);

  const json mounts = bodyOf(client.get("/v1/sys/internal/ui/mounts/kv/cluster1/ca", token, "team-a"));
  CHECK(mounts["data"]["path"] == "kv/cluster1/");
  CHECK(mounts["data"]["type"] == "kv");
  CHECK(mounts["data"]["options"]["version"] == "2");

  // A mount of a child namespace, asked for through its parent: Vault gives the child
  // namespace's full path, not the part below the request's namespace.
  REQUIRE(vault->enableKv("team-a/sub", "kv", 2));
  REQUIRE(vault->setPolicy("team-a", "child-reader", {{"sub/kv/data/*", {"read"}}}));
  const std::string parent_token = vault->createToken("team-a", {.policies = {"child-reader"}});
  const json child = bodyOf(client.get("/v1/sys/internal/ui/mounts/sub/kv/ca", parent_token, "team-a"));
  CHECK(child["data"]["path"] == "team-a/sub/kv/");

  // Path-prefix and header namespaces are equivalent.
  const auto by_prefix = client.get("/v1/team-a/kv/cluster1/data/ca", token);
  REQUIRE(by_prefix);
  CHECK(by_prefix->status == 200);

  // A token from team-a is invalid in the root namespace.
  const auto other_ns = client.get("/v1/sys/internal/ui/mounts/kv", token);
  REQUIRE(other_ns);
  CHECK(other_ns->status == 403);

  // Engines can also be enabled over HTTP with an admin token.
  const auto enable = client.post("/v1/sys/mounts/kv-new", {{"type", "kv"}, {"options", {{"version", "2"}}}},
                                  vault->rootToken());
  REQUIRE(enable);
  CHECK(enable->status == 204);
  CHECK(bodyOf(client.get("/v1/sys/internal/ui/mounts/kv-new", vault->rootToken()))["data"]["options"]["version"] == "2");

  const auto unknown = client.get("/v1/sys/internal/ui/mounts/nope/x", token, "team-a");
  REQUIRE(unknown);
  CHECK(unknown->status == 403);
  CHECK_THAT(firstError(unknown), Catch::StartsWith("preflight capability check returned 403"));
}

TEST_CASE("policy paths are matched as full paths: a token's rules see child namespaces from its own",
          "[vault-server]") {
  CHECK(pathSeenFrom("team", "team", "secret/data/x") == "secret/data/x");
  CHECK(pathSeenFrom("team", "team/istio", "secret/data/x") == "istio/secret/data/x");
  CHECK(pathSeenFrom("team", "team/istio/mesh", "kv/") == "istio/mesh/kv/");
  CHECK(pathSeenFrom("", "team/istio", "secret/data/x") == "team/istio/secret/data/x");
  CHECK_FALSE(pathSeenFrom("team/istio", "team", "secret/data/x"));    // parent
  CHECK_FALSE(pathSeenFrom("team/istio", "team/other", "secret/data/x"));  // sibling
  CHECK_FALSE(pathSeenFrom("team/istio", "", "secret/data/x"));        // root
  CHECK_FALSE(pathSeenFrom("team", "team-b", "secret/data/x"));       // a name prefix is no parent
}

TEST_CASE("vault server lets a token act in namespaces below its own, as its policies allow",
          "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableKv("team/istio", "secret", 2));
  REQUIRE(vault->kvPut("team/istio", "secret", "istio/ca", {{"k", "child"}}));
  REQUIRE(vault->enableKv("team", "secret", 2));
  REQUIRE(vault->kvPut("team", "secret", "istio/ca", {{"k", "parent"}}));
  REQUIRE(vault->enableKv("team/other", "secret", 2));
  REQUIRE(vault->kvPut("team/other", "secret", "istio/ca", {{"k", "sibling"}}));
  // A rule for the child's mount, written in the parent with the child's relative path.
  REQUIRE(vault->setPolicy("team", "istio-reader", {{"istio/secret/data/istio/*", {"read"}}}));
  // The same rule without the child's path names the parent's own mount only.
  REQUIRE(vault->setPolicy("team", "own-reader", {{"secret/data/istio/*", {"read"}}}));
  REQUIRE(vault->setPolicy("team/istio", "reader", {{"secret/data/*", {"read"}}}));
  REQUIRE(vault->setPolicy("", "deep-reader", {{"team/istio/secret/data/*", {"read"}}}));
  const std::string parent = vault->createToken("team", {.policies = {"istio-reader"}});
  const std::string parent_own = vault->createToken("team", {.policies = {"own-reader"}});
  const std::string child = vault->createToken("team/istio", {.policies = {"reader"}});
  const std::string from_root = vault->createToken("", {.policies = {"deep-reader"}});
  Client client(*vault);
  auto status = [&](const std::string& path, const std::string& token, const std::string& ns) {
    return statusOf(client.get(path, token, ns));
  };

  SECTION("a parent's token reads the child's mount, however the namespace is named") {
    const json by_header = bodyOf(client.get("/v1/secret/data/istio/ca", parent, "team/istio"));
    CHECK(by_header["data"]["data"]["k"] == "child");
    CHECK(bodyOf(client.get("/v1/istio/secret/data/istio/ca", parent, "team"))["data"]["data"]["k"] == "child");
    CHECK(bodyOf(client.get("/v1/team/istio/secret/data/istio/ca", parent))["data"]["data"]["k"] == "child");
    // Only what the rule names: another path of the same mount is a policy denial, not a bad token.
    REQUIRE(vault->kvPut("team/istio", "secret", "other/ca", {{"k", "x"}}));
    const auto other = client.get("/v1/secret/data/other/ca", parent, "team/istio");
    REQUIRE(other);
    CHECK(other->status == 403);
    CHECK(firstError(other) == "1 error occurred:\n\t* permission denied\n\n");
    // The token itself is good in the child namespace.
    CHECK(status("/v1/auth/token/lookup-self", parent, "team/istio") == 200);
  }
  SECTION("mount discovery in the child answers for a parent's token") {
    const json here = bodyOf(client.get("/v1/sys/internal/ui/mounts/secret/istio/ca", parent, "team/istio"));
    CHECK(here["data"]["path"] == "secret/");
    const json from_parent = bodyOf(client.get("/v1/sys/internal/ui/mounts/istio/secret/istio/ca", parent, "team"));
    CHECK(from_parent["data"]["path"] == "team/istio/secret/");
    // A parent's rule without the child's path grants nothing in the child's mount.
    CHECK(status("/v1/sys/internal/ui/mounts/secret/istio/ca", parent_own, "team/istio") == 403);
  }
  SECTION("a rule without the child's path is the parent's own mount") {
    CHECK(status("/v1/secret/data/istio/ca", parent_own, "team/istio") == 403);
    CHECK(bodyOf(client.get("/v1/secret/data/istio/ca", parent_own, "team"))["data"]["data"]["k"] == "parent");
    // And the child-path rule does not reach the parent's own mount.
    CHECK(status("/v1/secret/data/istio/ca", parent, "team") == 403);
  }
  SECTION("a root-namespace token with a rule naming the full path") {
    CHECK(bodyOf(client.get("/v1/secret/data/istio/ca", from_root, "team/istio"))["data"]["data"]["k"] == "child");
    CHECK(status("/v1/secret/data/istio/ca", from_root, "team") == 403);
  }
  SECTION("a child's token is refused in its parent, a sibling and the root") {
    CHECK(bodyOf(client.get("/v1/secret/data/istio/ca", child, "team/istio"))["data"]["data"]["k"] == "child");
    CHECK(status("/v1/secret/data/istio/ca", child, "team") == 403);
    CHECK(status("/v1/secret/data/istio/ca", child, "team/other") == 403);
    CHECK(status("/v1/team/other/secret/data/istio/ca", child, "") == 403);
    CHECK(status("/v1/secret/data/istio/ca", child, "") == 403);
    CHECK(status("/v1/sys/internal/ui/mounts/secret/istio/ca", child, "team") == 403);
    CHECK(status("/v1/auth/token/lookup-self", child, "team") == 403);
  }
}

TEST_CASE("vault server reads a mount's effective TTLs at sys/mounts/<mount>/tune for a token granted read there",
          "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enablePki("", "pki", 0s));
  REQUIRE(vault->enablePki("", "pki_int", 48h));
  REQUIRE(vault->setPolicy("", "tune-reader", {{"sys/mounts/+/tune", {"read"}}}));
  REQUIRE(vault->setPolicy("", "signer", {{"pki/*", {"update"}}}));
  const std::string reader = vault->createToken("", {.policies = {"tune-reader"}});
  const std::string signer = vault->createToken("", {.policies = {"signer"}});
  Client client(*vault);

  // Not tuned: the system's 768h, where sys/internal/ui/mounts reports the mount's own 0.
  const json untuned = bodyOf(client.get("/v1/sys/mounts/pki/tune", reader));
  CHECK(untuned["data"]["max_lease_ttl"] == 768 * 3600);
  CHECK(untuned["data"]["default_lease_ttl"] == 768 * 3600);
  CHECK(bodyOf(client.get("/v1/sys/internal/ui/mounts/pki", signer))["data"]["config"]["max_lease_ttl"] == 0);
  const json tuned = bodyOf(client.get("/v1/sys/mounts/pki_int/tune", reader));
  CHECK(tuned["data"]["max_lease_ttl"] == 48 * 3600);
  CHECK(tuned["data"]["default_lease_ttl"] == 48 * 3600);  // the system default, capped at the max

  CHECK(statusOf(client.get("/v1/sys/mounts/pki/tune", signer)) == 403);
  CHECK(statusOf(client.get("/v1/sys/mounts/nope/tune", reader)) == 400);
}

TEST_CASE("vault server seals: 503 everywhere, sys/health reports it", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableKv("", "secret", 2));
  Client client(*vault);
  CHECK(client.get("/v1/sys/health")->status == 200);

  vault->seal(true);
  const auto read = client.get("/v1/secret/data/x", vault->rootToken());
  REQUIRE(read);
  CHECK(read->status == 503);
  CHECK(firstError(read) == "Vault is sealed");
  const auto health = client.get("/v1/sys/health");
  REQUIRE(health);
  CHECK(health->status == 503);
  CHECK(bodyOf(health)["sealed"] == true);
  CHECK(client.get("/v1/sys/health?sealedcode=299")->status == 299);
  CHECK(client.get("/v1/sys/health?sealedcode=abc")->status == 400);
}

TEST_CASE("vault server logs in with kubernetes, approle and cert auth per role", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enableAuth("", "kube-c1-mesh-auth", "kubernetes"));
  REQUIRE(vault->addKubernetesRole("", "kube-c1-mesh-auth",
                                   {.name = "istiod", .bound_service_account_names = {"istiod"},
                                    .bound_service_account_namespaces = {"istio-system"},
                                    .policies = {"ca-reader"}}));
  Client client(*vault);
  const std::string login = "/v1/auth/kube-c1-mesh-auth/login";

  const auto wrong_sa = client.post(login, {{"role", "istiod"}, {"jwt", jwtFor("istio-system", "default")}});
  REQUIRE(wrong_sa);
  CHECK(wrong_sa->status == 403);
  CHECK(firstError(wrong_sa) == "service account name not authorized");

  const auto wrong_ns = client.post(login, {{"role", "istiod"}, {"jwt", jwtFor("default", "istiod")}});
  CHECK(wrong_ns->status == 403);
  const auto bad_role = client.post(login, {{"role", "x"}, {"jwt", jwtFor("istio-system", "istiod")}});
  CHECK(bad_role->status == 400);
  CHECK(firstError(bad_role) == "invalid role name \"x\"");

  const auto good = client.post(login, {{"role", "istiod"}, {"jwt", jwtFor("istio-system", "istiod")}});
  REQUIRE(good);
  CHECK(good->status == 200);
  const json auth = bodyOf(good)["auth"];
  CHECK(auth["policies"] == json({"ca-reader", "default"}));
  CHECK(auth["metadata"]["service_account_name"] == "istiod");
  CHECK(auth["lease_duration"] == 3600);
  CHECK(auth["renewable"] == true);
  const auto self = client.get("/v1/auth/token/lookup-self", auth["client_token"].get<std::string>());
  CHECK(bodyOf(self)["data"]["path"] == "auth/kube-c1-mesh-auth/login");

  REQUIRE(vault->enableAuth("", "approle", "approle"));
  const auto creds = vault->addAppRole("", "approle", {.name = "agent", .policies = {"p"}});
  REQUIRE(creds);
  const auto bad_secret = client.post("/v1/auth/approle/login", {{"role_id", creds->role_id}, {"secret_id", "nope"}});
  CHECK(bad_secret->status == 400);
  CHECK(firstError(bad_secret) == "invalid role or secret ID");
  CHECK(client.post("/v1/auth/approle/login", {{"role_id", creds->role_id}, {"secret_id", creds->secret_id}})
            ->status == 200);

  const TestCa client_ca = makeRoot("Client CA");
  CertSpec leaf_spec;
  leaf_spec.common_name = "istiod-client";
  leaf_spec.is_ca = false;
  leaf_spec.ext_key_usage = {"clientAuth"};
  TestCa leaf{makeKey(), {}};
  leaf.cert = issueCert(leaf_spec, leaf.key, &client_ca.cert, client_ca.key);
  REQUIRE(vault->enableAuth("", "cert", "cert"));
  REQUIRE(vault->addCertRole("", "cert", {.name = "istiod", .certificate_pem = client_ca.cert.pem(), .policies = {"p"}}));
  const auto no_cert = client.post("/v1/auth/cert/login", json::object());
  CHECK(no_cert->status == 400);
  CHECK(firstError(no_cert) == "invalid certificate or no client certificate supplied");
  Client with_cert(*vault, &leaf);
  const auto cert_login = with_cert.post("/v1/auth/cert/login", {{"name", "istiod"}});
  REQUIRE(cert_login);
  CHECK(cert_login->status == 200);
  CHECK(bodyOf(cert_login)["auth"]["metadata"]["common_name"] == "istiod-client");
}

TEST_CASE("vault server signs intermediates with Vault's TTL clamping and warnings", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enablePki("", "pki/root", 87600h));
  const auto root = vault->pkiGenerateRoot("", "pki/root", {{"common_name", "Root"}, {"ttl", "8760h"},
                                                            {"key_type", "ec"}, {"issuer_name", "r1"}});
  REQUIRE(root);
  const TestKey key = makeKey("ec", 256);
  const std::string csr = makeCsr(key, {.common_name = "istiod intermediate"});
  Client client(*vault);
  const std::string token = vault->rootToken();

  SECTION("the mount's max_lease_ttl clamps first") {
    REQUIRE(vault->tuneMount("", "pki/root", 48h));
    const auto r = client.post("/v1/pki/root/issuer/r1/sign-intermediate",
                               {{"csr", csr}, {"ttl", "720h"}, {"max_path_length", 0}}, token);
    REQUIRE(r);
    CHECK(r->status == 200);
    const json j = bodyOf(r);
    CHECK(j["warnings"].size() == 2);
    CHECK(j["warnings"][0] == "TTL \"720h0m0s\" is longer than permitted maxTTL \"48h0m0s\", so maxTTL is being used");
    CHECK_THAT(j["warnings"][1].get<std::string>(), Catch::Contains("authority information access"));
    const TestCert cert = TestCert::fromPem(j["data"]["certificate"].get<std::string>());
    REQUIRE_FALSE(cert.empty());
    CHECK(j["data"]["certificate"].get<std::string>().back() != '\n');
    const auto now = std::chrono::system_clock::now();
    CHECK(cert.notAfter() > now + 47h);
    CHECK(cert.notAfter() < now + 49h);
    CHECK(cert.notBefore() < now - 20s);
    CHECK(j["data"]["expiration"] == std::chrono::duration_cast<std::chrono::seconds>(
                                         cert.notAfter().time_since_epoch()).count());
    CHECK(cert.isCa());
    CHECK(cert.pathLen() == 0);
    CHECK(samePublicKey(cert.publicKey(), key));
    CHECK(X509_get_extension_flags(cert.x509.get()) & EXFLAG_KUSAGE);
    CHECK((X509_get_key_usage(cert.x509.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    CHECK_FALSE(X509_get_extension_flags(cert.x509.get()) & EXFLAG_XKUSAGE);
    CHECK(j["data"]["serial_number"] == cert.serialColonHex());
    REQUIRE(j["data"]["ca_chain"].size() == 2);
    CHECK(j["data"]["ca_chain"][0] == j["data"]["certificate"]);
    CHECK(j["data"]["ca_chain"][1] == root.value()["certificate"]);
  }

  SECTION("then the issuer's notAfter truncates (1.17+)") {
    const auto r = client.post("/v1/pki/root/root/sign-intermediate", {{"csr", csr}, {"ttl", "17520h"}}, token);
    const json j = bodyOf(r);
    CHECK(j["warnings"].size() == 2);
    CHECK(j["warnings"][0] == "the signed intermediary CA certificate's notAfter was truncated to the issuer's notAfter");
    CHECK_THAT(j["warnings"][1].get<std::string>(), Catch::Contains("authority information access"));
    const TestCert cert = TestCert::fromPem(j["data"]["certificate"].get<std::string>());
    const auto root_cert = TestCert::fromPem(root.value()["certificate"].get<std::string>());
    CHECK(cert.notAfter() == root_cert.notAfter());
  }

  SECTION("a policy without update on the sign path is refused") {
    REQUIRE(vault->setPolicy("", "reader", {{"pki/root/root/sign-intermediate", {"read"}}}));
    const auto r = client.post("/v1/pki/root/root/sign-intermediate", {{"csr", csr}},
                               vault->createToken("", {.policies = {"reader"}}));
    CHECK(r->status == 403);
  }
}

TEST_CASE("vault server injects faults and goes down on request", "[vault-server]") {
  auto vault = startServer();
  Client client(*vault);

  vault->injectFault({.kind = Fault::Kind::kStatus, .path_prefix = "sys/", .status = 429,
                      .headers = {{"Retry-After", "2"}}});
  const auto limited = client.get("/v1/sys/health");
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK(limited->get_header_value("Retry-After") == "2");
  CHECK_THAT(firstError(limited), Catch::Contains("rate limit quota exceeded"));
  CHECK(client.get("/v1/sys/health")->status == 200);  // count 1: the fault is used up

  vault->injectFault({.kind = Fault::Kind::kDrop});
  CHECK_FALSE(client.get("/v1/sys/health"));
  vault->injectFault({.kind = Fault::Kind::kTruncate});
  CHECK_FALSE(client.get("/v1/sys/health"));
  vault->injectFault({.kind = Fault::Kind::kMalformedJson});
  const auto malformed = client.get("/v1/sys/health");
  REQUIRE(malformed);
  CHECK(json::parse(malformed->body, nullptr, false).is_discarded());
  vault->injectFault({.kind = Fault::Kind::kHugeBody, .huge_bytes = 1 << 20});
  const auto huge = client.get("/v1/sys/health");
  REQUIRE(huge);
  CHECK(huge->body.size() == 1 << 20);

  const int port = vault->port();
  vault->stopListening();
  const auto refused = client.get("/v1/sys/health");
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == httplib::Error::Connection);
  REQUIRE(vault->resumeListening());
  CHECK(vault->port() == port);
  CHECK(client.get("/v1/sys/health")->status == 200);

  const auto log = vault->requests();
  CHECK(std::count_if(log.begin(), log.end(), [](const RecordedRequest& r) { return r.status == 0; }) == 1);
}

TEST_CASE("vault server keeps several PKI issuers with a default that does not move", "[vault-server]") {
  auto vault = startServer();
  REQUIRE(vault->enablePki("", "pki", 87600h));
  Client client(*vault);
  const std::string token = vault->rootToken();

  CHECK(client.get("/v1/pki/ca/pem")->status == 204);
  CHECK(client.get("/v1/pki/cert/ca")->status == 400);

  const auto first = vault->pkiGenerateRoot("", "pki", {{"common_name", "Root 1"}, {"key_type", "ec"}});
  REQUIRE(first);
  const TestCa imported = makeRoot("Root 2");
  const auto import = client.post("/v1/pki/config/ca", {{"pem_bundle", imported.key.pkcs8Pem() + imported.cert.pem()}}, token);
  REQUIRE(import);
  CHECK(import->status == 200);
  const json imported_data = bodyOf(import)["data"];
  REQUIRE(imported_data["imported_issuers"].size() == 1);
  const std::string second_id = imported_data["imported_issuers"][0];
  CHECK(imported_data["mapping"][second_id] == imported_data["imported_keys"][0]);
  const auto again = bodyOf(client.post("/v1/pki/config/ca", {{"pem_bundle", imported.cert.pem()}}, token));
  CHECK(again["data"]["imported_issuers"].is_null());
  CHECK(again["data"]["existing_issuers"] == json({second_id}));

  const json list = bodyOf(client.raw().Get("/v1/pki/issuers?list=true", client.headers()));
  REQUIRE(list["data"]["keys"].size() == 2);
  CHECK(list["data"]["key_info"][first.value()["issuer_id"].get<std::string>()]["is_default"] == true);
  CHECK(list["data"]["key_info"][second_id]["is_default"] == false);

  // The legacy default stays on the first issuer until changed explicitly.
  CHECK(bodyOf(client.get("/v1/pki/cert/ca"))["data"]["certificate"] == first.value()["certificate"]);
  REQUIRE(vault->pkiSetDefaultIssuer("", "pki", second_id));
  CHECK(client.get("/v1/pki/ca/pem")->body == imported.cert.pem());
  const json issuer = bodyOf(client.get("/v1/pki/issuer/" + second_id + "/json"));
  CHECK(issuer["data"]["ca_chain"] == json({imported.cert.pemTrimmed()}));
  const auto unknown = client.get("/v1/pki/issuer/nope/json");
  CHECK(unknown->status == 500);
  CHECK_THAT(firstError(unknown), Catch::Contains("unable to find PKI issuer for reference: nope"));

  const auto csr = client.post("/v1/pki/intermediate/generate/exported",
                               {{"common_name", "Int"}, {"key_type", "ec"}, {"key_bits", 384}}, token);
  const json generated = bodyOf(csr)["data"];
  CHECK(generated["private_key_type"] == "ec");
  CHECK(generated["private_key"].get<std::string>().rfind("-----BEGIN EC PRIVATE KEY-----", 0) == 0);
  CHECK(parseCsr(generated["csr"].get<std::string>()).common_name == "Int");
  CHECK_FALSE(bodyOf(client.post("/v1/pki/intermediate/generate/internal", {{"common_name", "Int"}}, token))["data"]
                  .contains("private_key"));
}

TEST_CASE("vault server switches to older Vault behaviour on request", "[vault-server]") {
  VaultTestServerOptions options;
  options.behaviour.pki_legacy_ca_chain = true;
  options.behaviour.pki_not_after_beyond_issuer = true;
  options.behaviour.pki_expiration_as_string = true;
  options.behaviour.token_errors_modern = false;
  auto vault = startServer(options);
  REQUIRE(vault->enablePki("", "pki", 87600h));
  const auto root = vault->pkiGenerateRoot("", "pki", {{"common_name", "Root"}, {"ttl", "24h"}, {"key_type", "ec"}});
  REQUIRE(root);
  Client client(*vault);

  const json j = bodyOf(client.post("/v1/pki/root/sign-intermediate",
                                    {{"csr", makeCsr(makeKey(), {})}, {"common_name", "Int"}, {"ttl", "48h"}},
                                    vault->rootToken()));
  CHECK(j["data"]["ca_chain"] == json({root.value()["certificate"]}));
  CHECK(j["data"]["expiration"].is_string());
  CHECK_THAT(j["warnings"][0].get<std::string>(), Catch::Contains("after the CA's expiration time"));
  const TestCert cert = TestCert::fromPem(j["data"]["certificate"].get<std::string>());
  CHECK(cert.notAfter() > TestCert::fromPem(root.value()["certificate"].get<std::string>()).notAfter());
  CHECK(cert.commonName() == "Int");

  const auto bad = client.get("/v1/pki/issuers?list=true", "hvs.unknown");
  CHECK(bad->status == 200);  // the issuer list is public; a bad token is ignored there
  const auto denied = client.get("/v1/auth/token/lookup-self", "hvs.unknown");
  CHECK(denied->status == 403);
  CHECK(firstError(denied) == "1 error occurred:\n\t* permission denied\n\n");
}

TEST_CASE("vault server renews tokens within their max TTL and logs in with JWT roles", "[vault-server]") {
  auto vault = startServer();
  Client client(*vault);
  const std::string token = vault->createToken(
      "", {.policies = {"p"}, .ttl_seconds = 600, .max_ttl_seconds = 900, .renewable = true});
  vault->advanceClock(300s);
  const json renewed = bodyOf(client.post("/v1/auth/token/renew-self", {{"increment", "1h"}}, token));
  CHECK(renewed["auth"]["lease_duration"] == 600);  // 900 max - 300 used
  CHECK(renewed["warnings"].size() == 1);
  const int ttl = bodyOf(client.get("/v1/auth/token/lookup-self", token))["data"]["ttl"];
  CHECK((ttl > 590 && ttl <= 600));
  const std::string fixed = vault->createToken("", {.policies = {"p"}, .ttl_seconds = 600});
  CHECK(client.post("/v1/auth/token/renew-self", json::object(), fixed)->status == 400);

  REQUIRE(vault->enableAuth("", "jwt-ci", "jwt"));
  REQUIRE(vault->addJwtRole("", "jwt-ci", {.name = "ci", .bound_subject = "repo:x", .bound_audiences = {"vault"}}));
  const auto login = [&](const json& claims) {
    return client.post("/v1/auth/jwt-ci/login", {{"role", "ci"}, {"jwt", makeUnsignedJwt(claims)}});
  };
  CHECK(login({{"sub", "repo:x"}, {"aud", "vault"}})->status == 200);
  CHECK(login({{"sub", "repo:y"}, {"aud", "vault"}})->status == 400);
  CHECK(login({{"sub", "repo:x"}, {"aud", json::array({"other"})}})->status == 400);
}

TEST_CASE("vault server revokes tokens, counts live login tokens and never renews batch tokens", "[vault-server]") {
  auto vault = startServer();
  Client client(*vault);
  REQUIRE(vault->enableAuth("", "kubernetes", "kubernetes"));
  REQUIRE(vault->addKubernetesRole("", "kubernetes", {.name = "r", .bound_service_account_names = {"sa"},
                                                      .bound_service_account_namespaces = {"ns"}, .policies = {"p"}}));
  const auto login = [&] {
    return bodyOf(client.post("/v1/auth/kubernetes/login", {{"role", "r"}, {"jwt", jwtFor("ns", "sa")}}))["auth"];
  };
  const std::string a = login()["client_token"], b = login()["client_token"];
  CHECK(vault->liveTokens() == 2);
  CHECK(vault->liveTokens(false) == 3);  // and the root token
  CHECK(client.post("/v1/auth/token/revoke-self", json::object(), a)->status == 204);
  CHECK(vault->liveTokens() == 1);
  CHECK(firstError(client.get("/v1/auth/token/lookup-self", a)) == invalidTokenMessage(true));
  CHECK(bodyOf(client.get("/v1/auth/token/lookup-self", b))["data"]["type"] == "service");
  vault->advanceClock(2h);  // past the role's 1 h TTL
  CHECK(vault->liveTokens() == 0);

  const std::string batch = vault->createToken("", {.policies = {"p"}, .ttl_seconds = 600, .renewable = true, .type = "batch"});
  const json looked = bodyOf(client.get("/v1/auth/token/lookup-self", batch))["data"];
  CHECK(looked["type"] == "batch");
  CHECK(looked["renewable"] == false);
  const auto renewed = client.post("/v1/auth/token/renew-self", json::object(), batch);
  REQUIRE(renewed);
  CHECK(renewed->status == 400);
  CHECK(firstError(renewed) == "batch tokens cannot be renewed");
}
