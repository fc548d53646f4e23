// Child processes without fork(): posix_spawn for the ffmpeg and ffprobe that lib/video starts.
//
// libuv (child_process.spawn) forks on Linux. fork() copies the page tables of the whole process and
// write-protects every anonymous page, so with a model loaded it blocks the JS thread for tens of
// milliseconds (44 ms from a 2.7 GB process here) and makes every thread take a fault on the next
// write to each page. glibc's posix_spawn uses clone(CLONE_VM | CLONE_VFORK): nothing is copied, and
// no pthread_atfork handler (OpenBLAS tears its pool down in one) runs in this process.
#pragma once

#include <napi.h>

namespace vmae {

// Sync. spawnProcess(file, args, { stdin, fd3 }, onExit) starts `file` (searched on PATH) with
// argv [file, ...args], this process's environment, default signal dispositions and an empty signal mask.
// fd 0 is a pipe when `stdin` is true, else /dev/null; fds 1 and 2 are pipes, and so is fd 3 when
// `fd3` is true. Returns { pid, stdin, stdout, stderr, fd3 }: the parent's ends (close-on-exec;
// -1 for a pipe not asked for). onExit(code, signal) is called once, on this thread, after the
// process has exited and been reaped; until then its pid cannot be reused. Throws an Error with
// `errno` set when the process cannot be started (ENOENT for a file not found). As with
// child_process, a child still running when its environment is torn down (a terminated worker) is
// not killed: it ends at its next write to the closed pipes, unreaped until the process exits.
Napi::Value SpawnProcess(const Napi::CallbackInfo& info);

}  // namespace vmae
