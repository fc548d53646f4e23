#include "addon/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace vmae {
namespace {

// Both ends of a pipe, close-on-exec; the child gets its end through dup2 (which clears the flag).
struct Pipe {
  int fd[2] = {-1, -1};
  void Close() {
    for (int& f : fd) {
      if (f >= 0) close(f);
      f = -1;
    }
  }
};

// Waits for `pid` to exit without reaping it (WNOWAIT), so that a kill() from JS before it hears
// of the exit cannot reach a process that reused the pid. The reaping happens on the JS thread,
// right before onExit runs; if the environment is gone by then, here.
void WatchExit(pid_t pid, Napi::ThreadSafeFunction tsfn) {
  siginfo_t si;
  while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == -1 && errno == EINTR) {
  }
  const napi_status status = tsfn.BlockingCall([pid](Napi::Env env, Napi::Function on_exit) {
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) == -1 && errno == EINTR) {
    }
    Napi::Value code = env.Null();
    Napi::Value signal = env.Null();
    if (WIFEXITED(wstatus)) code = Napi::Number::New(env, WEXITSTATUS(wstatus));
    if (WIFSIGNALED(wstatus)) signal = Napi::Number::New(env, WTERMSIG(wstatus));
    on_exit.Call({code, signal});
  });
  if (status != napi_ok) {
    while (waitpid(pid, nullptr, 0) == -1 && errno == EINTR) {
    }
  }
  tsfn.Release();
}

}  // namespace

Napi::Value SpawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsArray() || !info[2].IsObject() || !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "Expected (file, args, { stdin, fd3 }, onExit)");
  }
  const std::string file = info[0].As<Napi::String>();
  auto js_args = info[1].As<Napi::Array>();
  std::vector<std::string> args{file};  // argv[0], as child_process passes it
  for (uint32_t i = 0; i < js_args.Length(); i++) {
    Napi::Value a = js_args.Get(i);
    if (!a.IsString()) throw Napi::TypeError::New(env, "Expected strings in args");
    args.push_back(a.As<Napi::String>());
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto options = info[2].As<Napi::Object>();
  const bool want_stdin = options.Get("stdin").ToBoolean();
  const bool want_fd3 = options.Get("fd3").ToBoolean();

  Pipe in, out, err, fd3;
  auto close_all = [&] {
    for (Pipe* p : {&in, &out, &err, &fd3}) p->Close();
  };
  for (Pipe* p : {&in, &out, &err, &fd3}) {
    if ((p == &in && !want_stdin) || (p == &fd3 && !want_fd3)) continue;
    if (pipe2(p->fd, O_CLOEXEC) != 0) {
      const int e = errno;
      close_all();
      auto error = Napi::Error::New(env, std::string("pipe2: ") + std::strerror(e));
      error.Set("errno", Napi::Number::New(env, e));
      throw error;
    }
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (want_stdin) {
    posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  if (want_fd3) posix_spawn_file_actions_adddup2(&actions, fd3.fd[1], 3);
  // Node ignores SIGPIPE and the inference threads may block signals: give the child the defaults.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, file.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  // The child's ends belong to the child now (or to nobody, on failure).
  for (Pipe* p : {&out, &err, &fd3}) {
    if (p->fd[1] >= 0) close(p->fd[1]);
    p->fd[1] = -1;
  }
  if (in.fd[0] >= 0) close(in.fd[0]);
  in.fd[0] = -1;
  if (rc != 0) {
    close_all();
    auto error = Napi::Error::New(env, "spawn " + file + ": " + std::strerror(rc));
    error.Set("errno", Napi::Number::New(env, rc));
    throw error;
  }

  auto tsfn = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "vmae.processExit", 0, 1);
  try {
    std::thread(WatchExit, pid, tsfn).detach();
  } catch (const std::system_error& e) {  // no thread to spare: nobody would reap it, so stop it now
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) == -1 && errno == EINTR) {
    }
    tsfn.Release();
    close_all();
    throw Napi::Error::New(env, std::string("spawn ") + file + ": " + e.what());
  }
  auto result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("stdin", Napi::Number::New(env, in.fd[1]));
  result.Set("stdout", Napi::Number::New(env, out.fd[0]));
  result.Set("stderr", Napi::Number::New(env, err.fd[0]));
  result.Set("fd3", Napi::Number::New(env, fd3.fd[0]));
  return result;
}

}  // namespace vmae
