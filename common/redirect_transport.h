// RedirectFollowingTransport: an HttpTransport decorator for HA Vault. A standby node that
// cannot forward a request answers 307 (or 308) with a Location header naming the same path
// and query on the active node; this follows such an answer once.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/http.h"

namespace cacerts {

// Builds the transport for a redirect target's base address ("https://host:port"), with the
// same trust settings and limits as the original one (same CA file/path and client
// certificate; the verified name is the new host unless a server-name override is set).
using HttpTransportFactory =
    std::function<Result<std::unique_ptr<HttpTransport>>(const std::string& base_url)>;

// send() forwards to `primary` (the transport for `base_url`). On a 307 or 308 with an
// absolute http(s) Location it sends the same request (method, headers, body) once to that
// address, through a transport from `factory` that is kept and reused while the target stays
// the same (so a burst of calls keeps one connection to the active node). The second request
// gets what is left of the first one's time budget (HttpRequest::timeout, when set). Its
// answer is returned as is, whatever the status, so the caller's retry rules apply.
// Errors (kInvalidArgument, naming both addresses, no path or query):
//   - a redirect from https to http (the token would cross the network in clear text);
//   - a 307/308 without a usable absolute Location;
//   - a second redirect in a row (a loop, or a standby pointing at another standby).
// A transport error of either request is returned as is. The first redirect to a new target
// is logged once at info (event=vault_redirect from=... to=..., addresses only).
// Not thread-safe, like every HttpTransport.
std::unique_ptr<HttpTransport> makeRedirectFollowingTransport(std::string base_url,
                                                              std::unique_ptr<HttpTransport> primary,
                                                              HttpTransportFactory factory);

}  // namespace cacerts
