#include "console_server.h"

#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "base/json_log.h"
#include "console_users.h"
#include "nlohmann/json.hpp"

namespace referral::clients {
namespace {

using nlohmann::json;

constexpr char kSessionCookie[] = "console_session";
constexpr char kCsrfHeader[] = "X-CSRF-Token";
constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr int kMaxConcurrentPasswordChecks = 4;

std::string Dump(const json& value) {
  // Replacement characters rather than an exception for invalid UTF-8.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(Dump(body), "application/json; charset=utf-8");
}

void SendError(httplib::Response& res, const absl::Status& status) {
  // Broker messages name fields and codes, never values (see the API's
  // error rules), so they can be shown to staff.
  SendJson(res, HttpStatusOf(status),
           json{{"error", std::string(status.message())},
                {"code", absl::StatusCodeToString(status.code())}});
}

void SendResult(httplib::Response& res, const absl::StatusOr<json>& result) {
  if (result.ok()) {
    SendJson(res, 200, *result);
  } else {
    SendError(res, result.status());
  }
}

std::string CookieValue(const httplib::Request& req, absl::string_view name) {
  const std::string header = req.get_header_value("Cookie");
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return "";
}

std::string SessionCookie(const std::string& token, absl::Duration max_age) {
  return absl::StrCat(kSessionCookie, "=", token,
                      "; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=",
                      absl::ToInt64Seconds(max_age));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// A string field of a JSON body, "" when absent or not a string.
std::string StringField(const json& body, const char* name) {
  auto found = body.find(name);
  if (found == body.end() || !found->is_string()) return "";
  return found->get<std::string>();
}

}  // namespace

struct ConsoleServer::Impl {
  Impl(ConsoleServerOptions options, ConsoleGateway* gateway)
      : options(std::move(options)),
        gateway(gateway),
        sessions(this->options.sessions),
        server(this->options.tls_cert_file.c_str(),
               this->options.tls_key_file.c_str()) {}

  struct StaticFile {
    std::string content;
    std::string type;
  };
  struct SignInFailures {
    int count = 0;
    absl::Time locked_until = absl::InfinitePast();
  };

  // The handler runs only for a live session; for a state-changing request
  // also only with a JSON body and the session's CSRF token.
  using SessionHandler = std::function<void(
      const httplib::Request&, httplib::Response&, const Session&)>;
  httplib::Server::Handler WithSession(bool changes_state,
                                       SessionHandler handler);

  void Routes();
  void SignIn(const httplib::Request& req, httplib::Response& res);
  bool LockedOut(const std::string& user);
  void RecordSignIn(const std::string& user, bool ok);

  const ConsoleServerOptions options;
  ConsoleGateway* const gateway;
  SessionStore sessions;
  httplib::SSLServer server;
  std::map<std::string, StaticFile> files;
  int port = 0;
  absl::Mutex mu;
  std::map<std::string, SignInFailures> failures ABSL_GUARDED_BY(mu);
  int hashing ABSL_GUARDED_BY(mu) = 0;  // password checks in progress
};

httplib::Server::Handler ConsoleServer::Impl::WithSession(
    bool changes_state, SessionHandler handler) {
  return [this, changes_state, handler = std::move(handler)](
             const httplib::Request& req, httplib::Response& res) {
    std::optional<Session> session =
        sessions.Find(CookieValue(req, kSessionCookie));
    if (!session.has_value()) {
      SendError(res, absl::UnauthenticatedError("sign in first"));
      return;
    }
    if (changes_state) {
      // A JSON body cannot be sent cross-site without a CORS preflight the
      // console never grants; the token proves the page is ours.
      if (!absl::StartsWith(req.get_header_value("Content-Type"),
                            "application/json")) {
        SendError(res, absl::InvalidArgumentError(
                           "request body must be application/json"));
        return;
      }
      if (!TokensEqual(req.get_header_value(kCsrfHeader),
                       session->csrf_token)) {
        LogEvent(LogLevel::kWarning, "csrf_refused", {{"path", req.path}});
        SendError(res,
                  absl::PermissionDeniedError("missing or wrong CSRF token"));
        return;
      }
    }
    handler(req, res, *session);
  };
}

bool ConsoleServer::Impl::LockedOut(const std::string& user) {
  absl::MutexLock lock(&mu);
  auto found = failures.find(user);
  return found != failures.end() && found->second.locked_until > absl::Now();
}

void ConsoleServer::Impl::RecordSignIn(const std::string& user, bool ok) {
  absl::MutexLock lock(&mu);
  if (ok) {
    failures.erase(user);
    return;
  }
  // Bounded: guessing many names must not grow memory without limit.
  if (failures.size() > 10000) failures.clear();
  SignInFailures& entry = failures[user];
  if (++entry.count >= options.max_failed_sign_ins) {
    entry.count = 0;
    entry.locked_until = absl::Now() + options.lockout;
  }
}

void ConsoleServer::Impl::SignIn(const httplib::Request& req,
                                 httplib::Response& res) {
  if (!absl::StartsWith(req.get_header_value("Content-Type"),
                        "application/json")) {
    SendError(res, absl::InvalidArgumentError(
                       "request body must be application/json"));
    return;
  }
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    SendError(res, absl::InvalidArgumentError("body: expected a JSON object"));
    return;
  }
  const std::string user = StringField(body, "user");
  const std::string password = StringField(body, "password");
  if (!CheckStaffName(user).ok() || password.empty()) {
    SendError(res, absl::UnauthenticatedError("wrong user name or password"));
    return;
  }
  if (LockedOut(user)) {
    LogEvent(LogLevel::kWarning, "sign_in_locked_out", {{"user", user}});
    SendError(res, absl::ResourceExhaustedError(
                       "too many failed sign-ins; try again later"));
    return;
  }
  absl::StatusOr<UserDirectory> users = UserDirectory::Load(options.users_file);
  if (!users.ok()) {
    LogEvent(LogLevel::kError, "users_file_unreadable",
             {{"reason", std::string(users.status().message())}});
    SendError(res, absl::UnavailableError("sign-in is not available"));
    return;
  }
  // Each check takes the hash's memory (64 MiB by default): a burst of
  // sign-ins must not take the machine's.
  {
    absl::MutexLock lock(&mu);
    if (hashing >= kMaxConcurrentPasswordChecks) {
      SendError(res, absl::UnavailableError("busy; try again"));
      return;
    }
    ++hashing;
  }
  const bool ok = users->Verify(user, password);
  {
    absl::MutexLock lock(&mu);
    --hashing;
  }
  RecordSignIn(user, ok);
  if (!ok) {
    LogEvent(LogLevel::kWarning, "sign_in_failed", {{"user", user}});
    SendError(res, absl::UnauthenticatedError("wrong user name or password"));
    return;
  }
  NewSession created = sessions.Create(user);
  LogEvent(LogLevel::kInfo, "signed_in", {{"user", user}});
  res.set_header(
      "Set-Cookie",
      SessionCookie(created.session_token, options.sessions.absolute_timeout));
  SendJson(res, 200,
           json{{"user", user},
                {"csrf_token", created.csrf_token},
                {"queues", gateway->queues()}});
}

void ConsoleServer::Impl::Routes() {
  for (const auto& [path, file] : files) {
    const std::string content = file.content;
    const std::string type = file.type;
    server.Get(
        path, [content, type](const httplib::Request&, httplib::Response& res) {
          res.set_content(content, type);
        });
  }
  server.Post("/api/sign-in",
              [this](const httplib::Request& req, httplib::Response& res) {
                SignIn(req, res);
              });
  server.Get("/api/session", WithSession(false, [this](const httplib::Request&,
                                                       httplib::Response& res,
                                                       const Session& session) {
               SendJson(res, 200,
                        json{{"user", session.user},
                             {"csrf_token", session.csrf_token},
                             {"queues", gateway->queues()}});
             }));
  server.Post(
      "/api/sign-out",
      WithSession(true, [this](const httplib::Request& req,
                               httplib::Response& res, const Session& session) {
        sessions.Delete(CookieValue(req, kSessionCookie));
        LogEvent(LogLevel::kInfo, "signed_out", {{"user", session.user}});
        res.set_header("Set-Cookie", SessionCookie("", absl::ZeroDuration()));
        SendJson(res, 200, json{{"signed_out", true}});
      }));
  server.Get("/api/queues", WithSession(false, [this](const httplib::Request&,
                                                      httplib::Response& res,
                                                      const Session& session) {
               SendResult(res, gateway->ListQueues(session.user));
             }));
  // Server-sent events: /api/events for every queue (the page), or
  // /api/queues/<queue>/events for one.
  server.Get(
      R"(/api/(?:queues/([a-z0-9-]{1,64})/)?events)",
      WithSession(false, [this](const httplib::Request& req,
                                httplib::Response& res,
                                const Session& session) {
        const std::string queue = req.matches[1].matched
                                      ? std::string(req.matches[1])
                                      : ConsoleGateway::kAllQueues;
        absl::StatusOr<std::shared_ptr<EventStream>> stream =
            gateway->Subscribe(queue);
        if (!stream.ok()) {
          SendError(res, stream.status());
          return;
        }
        const std::string token = CookieValue(req, kSessionCookie);
        res.set_header("Cache-Control", "no-store");
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, stream = *stream, token, first = true](
                size_t, httplib::DataSink& sink) mutable {
              if (first) {
                first = false;
                static constexpr char kHello[] = "retry: 3000\n: live\n\n";
                return sink.write(kHello, sizeof(kHello) - 1);
              }
              std::optional<std::string> next = stream->Next(absl::Seconds(15));
              // Shutting down, or the session ended (signed out, expired):
              // the stream ends with it.
              if (!next.has_value() || !sessions.IsLive(token)) {
                sink.done();
                return true;
              }
              const std::string chunk =
                  next->empty() ? std::string(": keep-alive\n\n")
                                : absl::StrCat("data: ", *next, "\n\n");
              return sink.write(chunk.data(), chunk.size());
            },
            [this, queue, stream = *stream](bool) {
              gateway->Unsubscribe(queue, stream);
            });
      }));
  server.Post(
      R"(/api/queues/([a-z0-9-]{1,64})/claim)",
      WithSession(true, [this](const httplib::Request& req,
                               httplib::Response& res, const Session& session) {
        const std::string queue = req.matches[1];
        if (!gateway->KnowsQueue(queue)) {
          SendError(res, absl::NotFoundError("queue: no such queue"));
          return;
        }
        SendResult(res, gateway->ClaimNext(session.user, queue));
      }));
  server.Get(R"(/api/referrals/([A-Za-z0-9-]{1,64}))",
             WithSession(
                 false, [this](const httplib::Request& req,
                               httplib::Response& res, const Session& session) {
                   SendResult(
                       res, gateway->GetReferral(session.user, req.matches[1]));
                 }));
  server.Post(
      R"(/api/referrals/([A-Za-z0-9-]{1,64})/(extend|release|decide))",
      WithSession(true, [this](const httplib::Request& req,
                               httplib::Response& res, const Session& session) {
        json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (!body.is_object()) {
          SendError(res,
                    absl::InvalidArgumentError("body: expected a JSON object"));
          return;
        }
        const std::string id = req.matches[1];
        const std::string action = req.matches[2];
        if (action == "extend") {
          int seconds = 1800;
          if (auto found = body.find("lease_seconds");
              found != body.end() && found->is_number_integer()) {
            seconds = found->get<int>();
          }
          SendResult(res, gateway->Extend(session.user, id, seconds));
        } else if (action == "release") {
          const std::string reason = StringField(body, "reason");
          if (reason.empty()) {
            SendError(res, absl::InvalidArgumentError(
                               "reason: say why the referral goes back"));
            return;
          }
          SendResult(res, gateway->Release(session.user, id, reason));
        } else {
          const std::string rationale = StringField(body, "rationale");
          if (rationale.empty()) {
            SendError(res,
                      absl::InvalidArgumentError(
                          "rationale: record the reasons for the decision"));
            return;
          }
          SendResult(res, gateway->Decide(
                              session.user, id, StringField(body, "decision"),
                              rationale, StringField(body, "feedback")));
        }
      }));
  server.Get(
      "/api/overview",
      WithSession(false, [this](const httplib::Request&, httplib::Response& res,
                                const Session& session) {
        SendResult(res, gateway->Overview(session.user));
      }));
}

ConsoleServer::ConsoleServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

ConsoleServer::~ConsoleServer() { Stop(); }

absl::StatusOr<std::unique_ptr<ConsoleServer>> ConsoleServer::Create(
    ConsoleServerOptions options, ConsoleGateway* gateway) {
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key are required: the console serves HTTPS only");
  }
  if (options.users_file.empty()) {
    return absl::InvalidArgumentError("--users_file is required");
  }
  auto impl = std::make_unique<Impl>(std::move(options), gateway);
  if (!impl->server.is_valid()) {
    return absl::FailedPreconditionError(
        "--tls_cert/--tls_key: cannot load the certificate and key");
  }
  static const std::pair<const char*, const char*> kFiles[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"app.css", "text/css; charset=utf-8"},
  };
  for (const auto& [name, type] : kFiles) {
    absl::StatusOr<std::string> content =
        ReadFile(absl::StrCat(impl->options.web_root, "/", name));
    if (!content.ok()) {
      return absl::NotFoundError(
          absl::StrCat("--web_root: ", content.status().message()));
    }
    impl->files[absl::StrCat("/", name)] = {*content, type};
  }
  impl->files["/"] = impl->files["/index.html"];

  httplib::SSLServer& server = impl->server;
  const int threads = impl->options.http_threads;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  server.set_payload_max_length(kMaxRequestBytes);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_post_routing_handler([](const httplib::Request&,
                                     httplib::Response& res) {
    // The page loads only its own files and talks only to this origin.
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data:; connect-src 'self'; "
                   "form-action 'self'; frame-ancestors 'none'; "
                   "base-uri 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Strict-Transport-Security", "max-age=31536000");
    if (!res.has_header("Cache-Control")) {
      res.set_header("Cache-Control", "no-store");
    }
  });
  server.set_exception_handler([](const httplib::Request& req,
                                  httplib::Response& res, std::exception_ptr) {
    LogEvent(LogLevel::kError, "request_failed", {{"path", req.path}});
    SendError(res, absl::InternalError("internal error"));
  });
  server.set_logger(
      [](const httplib::Request& req, const httplib::Response& res) {
        // Method, path (ids only) and status: never bodies or query strings.
        LogEvent(LogLevel::kDebug, "http_request",
                 {{"method", req.method},
                  {"path", req.path},
                  {"status", absl::StrCat(res.status)}});
      });
  impl->Routes();

  const std::string& host = impl->options.host;
  if (impl->options.port == 0) {
    impl->port = server.bind_to_any_port(host);
    if (impl->port <= 0) {
      return absl::UnavailableError(
          absl::StrCat("--listen: cannot bind ", host));
    }
  } else {
    if (!server.bind_to_port(host, impl->options.port)) {
      return absl::UnavailableError(absl::StrCat("--listen: cannot bind ", host,
                                                 ":", impl->options.port));
    }
    impl->port = impl->options.port;
  }
  return std::unique_ptr<ConsoleServer>(new ConsoleServer(std::move(impl)));
}

int ConsoleServer::port() const { return impl_->port; }

absl::Status ConsoleServer::Serve() {
  if (!impl_->server.listen_after_bind()) {
    return absl::UnavailableError("console: the listener failed");
  }
  return absl::OkStatus();
}

void ConsoleServer::Stop() {
  // Live streams hold worker threads; they end first so the pool can join.
  impl_->gateway->Stop();
  impl_->server.stop();
}

}  // namespace referral::clients
