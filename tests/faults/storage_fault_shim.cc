// An LD_PRELOAD shim for fault-injection tests, failing the two ways a disk
// can refuse a write:
//   - once the file named by REFERRAL_FAULT_FSYNC_AFTER_FILE exists, fsync,
//     fdatasync and sync_file_range (when asked to wait for write-back) fail
//     with EIO: a write that never reached stable storage;
//   - once the file named by REFERRAL_FAULT_WRITE_AFTER_FILE exists, write,
//     pwrite, writev and pwritev fail with EIO before writing anything: a
//     device that rejects the data outright.
// Only descriptors whose path starts with REFERRAL_FAULT_DATA_DIR (when set)
// are affected, so the broker's other files (logs, port files) and its
// sockets behave normally. Removing a trigger file ends that fault.
//
// Without the trigger variables set the shim passes every call through, so
// preloading it is harmless.
// C++ only because the project enables no C compiler; everything here is
// plain C with C linkage.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// Whether an operation on `fd` must fail now because the trigger named by
// the environment variable `trigger_variable` exists. Checked on every call
// (a stat of the trigger file): tests create and remove it while the broker
// runs.
int ShouldFail(const char* trigger_variable, int fd) {
  const char* trigger = getenv(trigger_variable);
  if (trigger == nullptr || *trigger == '\0') return 0;
  if (access(trigger, F_OK) != 0) return 0;
  const char* dir = getenv("REFERRAL_FAULT_DATA_DIR");
  if (dir == nullptr || *dir == '\0') return 1;
  char link[64];
  char path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 0;  // a socket or pipe being closed: not a data file
  path[n] = '\0';
  const size_t len = strlen(dir);
  return strncmp(path, dir, len) == 0 &&
         (path[len] == '\0' || path[len] == '/');
}

int SyncShouldFail(int fd) {
  return ShouldFail("REFERRAL_FAULT_FSYNC_AFTER_FILE", fd);
}

int WriteShouldFail(int fd) {
  return ShouldFail("REFERRAL_FAULT_WRITE_AFTER_FILE", fd);
}

// The next definition of `name` after this shim's, looked up once.
template <typename Function>
Function Real(Function& cached, const char* name) {
  if (cached == nullptr)
    cached = reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
  return cached;
}

}  // namespace

extern "C" {

int fsync(int fd) {
  static int (*real)(int) = nullptr;
  if (SyncShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "fsync")(fd);
}

int fdatasync(int fd) {
  static int (*real)(int) = nullptr;
  if (SyncShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "fdatasync")(fd);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes,
                    unsigned int flags) {
  static int (*real)(int, off64_t, off64_t, unsigned int) = nullptr;
  // Without a WAIT flag the call only starts write-back and a kernel
  // reports no I/O error from it (RocksDB probes for support with flags 0
  // and asserts that this succeeds).
  const unsigned int waits =
      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER;
  if ((flags & waits) != 0 && SyncShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "sync_file_range")(fd, offset, nbytes, flags);
}

ssize_t write(int fd, const void* buffer, size_t count) {
  static ssize_t (*real)(int, const void*, size_t) = nullptr;
  if (WriteShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "write")(fd, buffer, count);
}

// pwrite and pwrite64 are the same function on 64-bit Linux but separate
// symbols: a caller built with large-file macros binds to the second.
ssize_t pwrite(int fd, const void* buffer, size_t count, off_t offset) {
  static ssize_t (*real)(int, const void*, size_t, off_t) = nullptr;
  if (WriteShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "pwrite")(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void* buffer, size_t count, off64_t offset) {
  static ssize_t (*real)(int, const void*, size_t, off64_t) = nullptr;
  if (WriteShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "pwrite64")(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  static ssize_t (*real)(int, const struct iovec*, int) = nullptr;
  if (WriteShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "writev")(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
  static ssize_t (*real)(int, const struct iovec*, int, off_t) = nullptr;
  if (WriteShouldFail(fd)) {
    errno = EIO;
    return -1;
  }
  return Real(real, "pwritev")(fd, iov, iovcnt, offset);
}

}  // extern "C"
