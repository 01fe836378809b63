// Network namespace switching for one synchronous call on the calling thread (netns.cc).
#pragma once
#include <napi.h>

namespace tern {
// inNetns(targetFd, homeFd, fn) -> fn's result
Napi::Value InNetns(const Napi::CallbackInfo& info);
}  // namespace tern
