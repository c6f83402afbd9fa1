// Test support: a plain HTTP/1.0 GET on loopback, enough to scrape the
// broker's Prometheus endpoint without a client library.
#ifndef REFERRAL_TESTS_SUPPORT_HTTP_GET_H_
#define REFERRAL_TESTS_SUPPORT_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"

namespace referral::testing {

struct HttpResponse {
  int status = 0;            // e.g. 200
  std::string content_type;  // the Content-Type header, if any
  std::string body;
};

// GET http://127.0.0.1:<port><path>; errors only for a failed connection or
// a malformed answer.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path);

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_SUPPORT_HTTP_GET_H_
