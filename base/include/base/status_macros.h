// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status code, which Abseil
// 20220623 does not ship. Shared by storage/, server/ and clients/.
#ifndef REFERRAL_BASE_STATUS_MACROS_H_
#define REFERRAL_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define REFERRAL_STATUS_CONCAT_INNER_(a, b) a##b
#define REFERRAL_STATUS_CONCAT_(a, b) REFERRAL_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function with the status if it is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status referral_status_ = (expr);            \
    if (!referral_status_.ok()) return referral_status_; \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): evaluates a StatusOr expression; on error
// returns its status, otherwise moves the value into lhs (which may be a
// declaration such as `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(           \
      REFERRAL_STATUS_CONCAT_(referral_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                           \
  if (!statusor.ok()) return statusor.status();     \
  lhs = std::move(statusor).value()

#endif  // REFERRAL_BASE_STATUS_MACROS_H_
