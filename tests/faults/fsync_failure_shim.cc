// An LD_PRELOAD shim for fault-injection tests: once the file named by
// REFERRAL_FAULT_FSYNC_AFTER_FILE exists, fsync, fdatasync and
// sync_file_range (when asked to wait for write-back) fail with EIO, the way a
// failing disk reports a write that never reached stable storage. Only
// descriptors whose path starts with REFERRAL_FAULT_DATA_DIR (when set) are
// affected, so the broker's other files (logs, port files) behave normally.
// Removing the trigger file makes syncing succeed again.
//
// Without the trigger variable set the shim passes every call through, so
// preloading it is harmless.
// C++ only because the project enables no C compiler; everything here is
// plain C with C linkage.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {

using sync_fn = int (*)(int);
using range_fn = int (*)(int, off64_t, off64_t, unsigned int);

namespace {

// Whether a sync of `fd` must fail now. Checked on every call (a stat of the
// trigger file): tests create and remove it while the broker runs.
int ShouldFail(int fd) {
  const char* trigger = getenv("REFERRAL_FAULT_FSYNC_AFTER_FILE");
  if (trigger == nullptr || *trigger == '\0') return 0;
  if (access(trigger, F_OK) != 0) return 0;
  const char* dir = getenv("REFERRAL_FAULT_DATA_DIR");
  if (dir == nullptr || *dir == '\0') return 1;
  char link[64];
  char path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 1;  // cannot tell: fail, the safer side for a test
  path[n] = '\0';
  const size_t len = strlen(dir);
  return strncmp(path, dir, len) == 0 &&
         (path[len] == '\0' || path[len] == '/');
}

void* Next(const char* name) { return dlsym(RTLD_NEXT, name); }

}  // namespace

int fsync(int fd) {
  static sync_fn real = nullptr;
  if (real == nullptr) real = reinterpret_cast<sync_fn>(Next("fsync"));
  if (ShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}

int fdatasync(int fd) {
  static sync_fn real = nullptr;
  if (real == nullptr) real = reinterpret_cast<sync_fn>(Next("fdatasync"));
  if (ShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes,
                    unsigned int flags) {
  static range_fn real = nullptr;
  if (real == nullptr)
    real = reinterpret_cast<range_fn>(Next("sync_file_range"));
  // Without a WAIT flag the call only starts write-back and a kernel
  // reports no I/O error from it (RocksDB probes for support with flags 0
  // and asserts that this succeeds).
  const unsigned int waits =
      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER;
  if ((flags & waits) != 0 && ShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd, offset, nbytes, flags);
}

}  // extern "C"
