// Linked into every target of a REFERRAL_SANITIZE=thread build, nowhere else.
//
// Why: the project synchronises with absl::Mutex, CondVar, Notification and
// BlockingCounter from Debian's libabsl_synchronization.so, which is built
// without ThreadSanitizer. absl::Mutex locks with its own atomics and futex
// calls (no pthread mutex that TSan could intercept), so TSan sees no
// happens-before edge from one critical section to the next and reports
// every variable guarded by an absl::Mutex as a data race (checked with a
// two-thread counter under absl::MutexLock: TSan reports it).
//
// What: these definitions interpose the library's out-of-line functions
// (the executable's definitions win over the shared library's, also for
// calls made from gRPC), call the real function found with
// dlsym(RTLD_NEXT) and tell TSan what it just happened: release before
// unlocking or notifying, acquire after locking or being woken. Races on
// data that is NOT guarded by the same mutex are still reported. Deadlock
// detection is not covered (TSan does not see these as mutexes). One
// over-approximation: a thread entering LockWhen/Await releases first (see
// AnnotatedCondition), so an unguarded write it made just before that is
// ordered before the next holder of the same mutex.
//
// The mangled names are those of Debian 12's Abseil 20220623 (inline
// namespace absl::debian3); a missing one aborts with its name rather than
// silently losing the annotation.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

template <typename Fn>
Fn Real(const char* mangled) {
  void* fn = dlsym(RTLD_NEXT, mangled);
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_sync_tsan: %s not found in Abseil\n", mangled);
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

void Acquire(const void* sync) { __tsan_acquire(const_cast<void*>(sync)); }
void Release(const void* sync) { __tsan_release(const_cast<void*>(sync)); }

// Abseil evaluates a waiter's Condition inside its own code, after taking
// the lock again (or in the thread that unlocks): the condition reads the
// guarded data before the interposed function returns, so the acquire has
// to happen inside the evaluation itself. The waiter releases before it
// waits so that whichever thread evaluates its Condition sees the Condition
// itself. (This file is compiled without -fsanitize=thread, see
// CMakeLists.txt: the Condition wrapper it builds is read by Abseil's
// uninstrumented code, and its own accesses need no checking.)
struct AnnotatedCondition {
  const absl::Condition* condition;
  const absl::Mutex* mu;
  static bool Eval(AnnotatedCondition* self) {
    Acquire(self->mu);
    const bool result = self->condition->Eval();
    Release(self->mu);  // its reads come before the next holder's writes
    return result;
  }
};

}  // namespace

namespace absl {

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  static auto real =
      Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>("_ZN4absl7debian35Mutex7TryLockEv");
  bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static auto real =
      Real<bool (*)(Mutex*)>("_ZN4absl7debian35Mutex13ReaderTryLockEv");
  bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex6UnlockEv");
  Release(this);
  real(this);
}

// A reader's release orders its reads before the next writer's writes.
void Mutex::ReaderUnlock() {
  static auto real =
      Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  real(this, absl::Condition(&AnnotatedCondition::Eval, &annotated));
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  real(this, absl::Condition(&AnnotatedCondition::Eval, &annotated));
  Acquire(this);
}

// The *WithTimeout/*WithDeadline lock functions hold the lock on return
// whatever they return.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  bool result = real(
      this, absl::Condition(&AnnotatedCondition::Eval, &annotated), timeout);
  Acquire(this);
  return result;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  bool result = real(
      this, absl::Condition(&AnnotatedCondition::Eval, &annotated), deadline);
  Acquire(this);
  return result;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  bool result = real(
      this, absl::Condition(&AnnotatedCondition::Eval, &annotated), timeout);
  Acquire(this);
  return result;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  bool result = real(
      this, absl::Condition(&AnnotatedCondition::Eval, &annotated), deadline);
  Acquire(this);
  return result;
}

// Await releases the lock while it waits and holds it again on return.
void Mutex::Await(const Condition& cond) {
  static auto real = Real<void (*)(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  real(this, absl::Condition(&AnnotatedCondition::Eval, &annotated));
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  bool result = real(
      this, absl::Condition(&AnnotatedCondition::Eval, &annotated), timeout);
  Acquire(this);
  return result;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AnnotatedCondition annotated{&cond, this};
  Release(this);
  bool result = real(
      this, absl::Condition(&AnnotatedCondition::Eval, &annotated), deadline);
  Acquire(this);
  return result;
}

void CondVar::Wait(Mutex* mu) {
  static auto real = Real<void (*)(CondVar*, Mutex*)>(
      "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  bool result = real(this, mu, timeout);
  Acquire(mu);
  return result;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  bool result = real(this, mu, deadline);
  Acquire(mu);
  return result;
}

void Notification::Notify() {
  static auto real =
      Real<void (*)(Notification*)>("_ZN4absl7debian312Notification6NotifyEv");
  Release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static auto real = Real<void (*)(const Notification*)>(
      "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static auto real = Real<bool (*)(const Notification*, Duration)>(
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
      "8DurationE");
  bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static auto real = Real<bool (*)(const Notification*, Time)>(
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
      "4TimeE");
  bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

bool BlockingCounter::DecrementCount() {
  static auto real = Real<bool (*)(BlockingCounter*)>(
      "_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  Release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  static auto real = Real<void (*)(BlockingCounter*)>(
      "_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  Acquire(this);
}

}  // namespace absl
