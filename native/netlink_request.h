// One rtnetlink request on a libuv worker thread (netlink_request.cc).
#pragma once
#include <napi.h>

namespace tern {
// netlinkRequest(message: Buffer, callback(err | null)) -> undefined
Napi::Value NetlinkRequest(const Napi::CallbackInfo& info);
}  // namespace tern
