// The triage console's HTTPS server (cpp-httplib): the page's static files,
// sign-in and sign-out, and the JSON API the page calls, each request
// checked for a live session and, when it changes anything, its CSRF token.
// The broker work is ConsoleGateway's; this unit is the web edge: cookies,
// headers, status codes, and catching the exceptions of httplib and
// nlohmann::json so none crosses into the rest of the program.
#ifndef REFERRAL_CLIENTS_CONSOLE_SERVER_H_
#define REFERRAL_CLIENTS_CONSOLE_SERVER_H_

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "console_gateway.h"
#include "console_sessions.h"

namespace referral::clients {

struct ConsoleServerOptions {
  std::string host = "127.0.0.1";
  int port = 8443;  // 0: any free port (see port())
  std::string tls_cert_file;
  std::string tls_key_file;
  // Folder holding index.html, app.js and app.css.
  std::string web_root;
  std::string users_file;
  SessionOptions sessions;
  // Failed sign-ins per staff name before that name is locked out for
  // `lockout`, slowing password guessing.
  int max_failed_sign_ins = 5;
  absl::Duration lockout = absl::Minutes(5);
  // HTTP worker threads. Each open live stream holds one, so this must
  // exceed GatewayOptions::max_event_streams.
  int http_threads = 48;
};

class ConsoleServer {
 public:
  // Loads the static files and the TLS key pair and binds the port.
  static absl::StatusOr<std::unique_ptr<ConsoleServer>> Create(
      ConsoleServerOptions options, ConsoleGateway* gateway);
  ~ConsoleServer();

  int port() const;
  // Serves until Stop(); returns when the listener has closed.
  absl::Status Serve();
  // Ends the browsers' live streams and stops the server; safe from
  // another thread.
  void Stop();

 private:
  struct Impl;
  explicit ConsoleServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CONSOLE_SERVER_H_
