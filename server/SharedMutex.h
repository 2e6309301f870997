#pragma once

// A reader-writer lock that prefers writers: once a writer waits, new readers queue behind it.
// std::shared_mutex on glibc prefers readers, so a steady stream of searches can keep a write
// batch (or the swap of a retrained index) waiting without end; with this lock a batch waits
// at most for the searches already running. Satisfies SharedMutex (std::shared_lock,
// std::unique_lock). Written here because neither the standard library nor Boost offers a
// writer-preferring shared mutex; it is a thin wrapper over the POSIX rwlock with glibc's
// PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP kind.

#include <pthread.h>

namespace bloch::server {

class WriterPreferringSharedMutex {
 public:
  WriterPreferringSharedMutex() {
    pthread_rwlockattr_t attributes;
    pthread_rwlockattr_init(&attributes);
    pthread_rwlockattr_setkind_np(&attributes, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attributes);
    pthread_rwlockattr_destroy(&attributes);
  }
  ~WriterPreferringSharedMutex() { pthread_rwlock_destroy(&lock_); }
  WriterPreferringSharedMutex(const WriterPreferringSharedMutex&) = delete;
  WriterPreferringSharedMutex& operator=(const WriterPreferringSharedMutex&) = delete;

  void lock() { pthread_rwlock_wrlock(&lock_); }
  bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace bloch::server
