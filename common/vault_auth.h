// The Vault auth methods the agent supports, each a VaultAuthenticator.
//
// Credentials are read from files at every login (projected service-account tokens rotate;
// secret_id files may be replaced) and held only for the duration of the login call.
#pragma once

#include <memory>
#include <string>

#include "common/vault_client.h"

namespace cacerts {

struct AuthSettings {
  std::string method;          // kubernetes | approle | jwt | cert | token
  std::string mount;           // "" = the method name; "auth/" prefix accepted
  std::string role;            // kubernetes / jwt role; cert: certificate role name (optional)
  std::string jwt_file;        // kubernetes / jwt
  std::string role_id;         // approle (inline) ...
  std::string role_id_file;    // ... or from a file
  std::string secret_id_file;  // approle
  std::string token_file;      // token method: file holding the token ...
  Secret token;                // ... or the token itself (VAULT_TOKEN)
};

// Errors: kInvalidArgument when the settings are incomplete for the method (names the
// missing option). Does no I/O.
Result<std::unique_ptr<VaultAuthenticator>> makeAuthenticator(const AuthSettings& settings);

// Reads a credential file: trims surrounding whitespace; empty or unreadable -> kInvalidArgument
// naming the option and path (never the content).
Result<Secret> readCredentialFile(const std::string& path, const std::string& option);

}  // namespace cacerts
