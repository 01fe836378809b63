// inNetns(targetFd, homeFd, fn): runs fn() with the calling thread in the network namespace of
// targetFd, then puts the thread back into homeFd's, and returns what fn returned (or lets its
// exception through).
//
// Why: a socket belongs to the netns its creating thread was in when socket(2) ran, for its whole
// life. Creating an rtnetlink socket inside fn() gives the agent a socket that configures a pod's
// netns, with no exec of nsenter/ip per pod. setns(CLONE_NEWNET) is per thread and allowed in a
// multi-threaded process; fn() is synchronous, so no other JavaScript runs on this thread while it is
// switched, and libuv's worker threads keep their own namespace. If the thread cannot be put back,
// everything this process opens afterwards would land in the pod's netns: that is not survivable,
// so it aborts.
#include "netns.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace tern {

namespace {
bool GetFd(const Napi::CallbackInfo& info, size_t i, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > 0x7fffffff || v != static_cast<int>(v)) return false;
  *out = static_cast<int>(v);
  return true;
}
}  // namespace

Napi::Value InNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int target, home;
  if (!GetFd(info, 0, &target) || !GetFd(info, 1, &home)) {
    Napi::TypeError::New(env, "inNetns: targetFd and homeFd must be file descriptors")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "inNetns: fn must be a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int err = errno;
    Napi::Error e = Napi::Error::New(env, std::string("setns: ") + strerror(err));
    e.Set("errno", Napi::Number::New(env, err));
    const char* name = strerrorname_np(err);
    e.Set("code", Napi::String::New(env, name ? name : "UNKNOWN"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  napi_value result = nullptr;
  napi_status status =
      napi_call_function(env, env.Global(), info[2].As<Napi::Function>(), 0, nullptr, &result);
  if (setns(home, CLONE_NEWNET) != 0) {
    fprintf(stderr, "tern: cannot return to the home network namespace (setns: %s); aborting\n",
            strerror(errno));
    abort();
  }
  // A pending exception from fn() propagates to the caller as is.
  if (status != napi_ok) return env.Undefined();
  return Napi::Value(env, result);
}

}  // namespace tern
