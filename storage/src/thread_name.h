// Names the calling thread (as `top -H`, `ps -L` and `perf report --sort
// comm` show it), so that operators and profiles can tell the store's
// threads from gRPC's and RocksDB's.
#ifndef REFERRAL_STORAGE_THREAD_NAME_H_
#define REFERRAL_STORAGE_THREAD_NAME_H_

#include <pthread.h>

namespace referral::storage {

// `name` must be at most 15 characters (the kernel's limit); a longer one
// leaves the thread's name as it was.
inline void NameThisThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_THREAD_NAME_H_
