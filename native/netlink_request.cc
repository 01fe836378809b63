// netlinkRequest(message, callback): sends one rtnetlink request (a whole nlmsghdr + body, which
// must ask for an ACK) from a libuv worker thread on a socket of its own, waits for the kernel's
// answer there, and calls back on the JS thread with null or an Error carrying errno, code and the
// kernel's extended-ACK message when it gave one.
//
// Why: the kernel handles an rtnetlink request inside the sender's sendmsg(2). Deleting a veth
// there waits out RCU grace periods (~25-30 ms on this class of machine); on the agent's JS thread
// that stalls BGP keepalives, BFD and every other request, and serialises concurrent deletions
// that the kernel could overlap. On the thread pool it blocks only a worker.
#include "netlink_request.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif

namespace tern {

namespace {

class Request : public Napi::AsyncWorker {
 public:
  Request(Napi::Function callback, const uint8_t* data, size_t length)
      : Napi::AsyncWorker(callback, "TernNetlinkRequest"), message_(data, data + length) {}

  void Execute() override {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return Fail("socket", errno);
    int on = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);  // best effort: messages only
    auto* hdr = reinterpret_cast<nlmsghdr*>(message_.data());
    const uint32_t seq = hdr->nlmsg_seq;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t sent;
    do {
      sent = sendto(fd, message_.data(), message_.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof kernel);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      int err = errno;
      close(fd);
      return Fail("sendto", err);
    }
    std::vector<uint8_t> buf(16384);
    for (;;) {
      ssize_t n;
      do {
        n = recv(fd, buf.data(), buf.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        int err = errno;
        close(fd);
        return Fail("recv", err);
      }
      int left = static_cast<int>(n);
      for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
        if (m->nlmsg_seq != seq || m->nlmsg_type != NLMSG_ERROR) continue;
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
          close(fd);
          return Fail("recv", EBADMSG);
        }
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(m));
        if (e->error != 0) ReadExtAck(m, e);
        close(fd);
        if (e->error != 0) Fail("request", -e->error);
        return;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!errno_) {
      Callback().Call({env.Null()});
      return;
    }
    const char* name = strerrorname_np(errno_);
    std::string text = step_ + ": " + (name ? name : "error") + " (" + strerror(errno_) + ")";
    if (!extack_.empty()) text += ": " + extack_;
    Napi::Error e = Napi::Error::New(env, text);
    e.Set("errno", Napi::Number::New(env, errno_));
    e.Set("code", Napi::String::New(env, name ? name : "UNKNOWN"));
    if (!extack_.empty()) e.Set("extack", Napi::String::New(env, extack_));
    Callback().Call({e.Value()});
  }

 private:
  void Fail(const char* step, int err) {
    step_ = step;
    errno_ = err;
  }

  // The NLMSGERR_ATTR_MSG attribute after the error header (and the echoed request, unless capped).
  void ReadExtAck(nlmsghdr* m, nlmsgerr* e) {
    if (!(m->nlmsg_flags & NLM_F_ACK_TLVS)) return;
    size_t offset = sizeof(nlmsgerr);
    if (!(m->nlmsg_flags & NLM_F_CAPPED)) offset += e->msg.nlmsg_len - sizeof(nlmsghdr);
    auto* start = static_cast<uint8_t*>(NLMSG_DATA(m));
    size_t total = m->nlmsg_len - NLMSG_HDRLEN;
    while (offset + sizeof(nlattr) <= total) {
      auto* a = reinterpret_cast<nlattr*>(start + offset);
      if (a->nla_len < sizeof(nlattr) || offset + a->nla_len > total) return;
      if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
        const char* s = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
        extack_.assign(s, strnlen(s, a->nla_len - NLA_HDRLEN));
        return;
      }
      offset += NLA_ALIGN(a->nla_len);
    }
  }

  std::vector<uint8_t> message_;
  std::string step_;
  std::string extack_;
  int errno_ = 0;
};

}  // namespace

Napi::Value NetlinkRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "netlinkRequest(message: Buffer, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto message = info[0].As<Napi::Buffer<uint8_t>>();
  if (message.Length() < sizeof(nlmsghdr) ||
      reinterpret_cast<const nlmsghdr*>(message.Data())->nlmsg_len != message.Length()) {
    Napi::TypeError::New(env, "netlinkRequest: message must be one whole netlink message")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!(reinterpret_cast<const nlmsghdr*>(message.Data())->nlmsg_flags & NLM_F_ACK)) {
    Napi::TypeError::New(env, "netlinkRequest: message must ask for an ACK (NLM_F_ACK)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* request = new Request(info[1].As<Napi::Function>(), message.Data(), message.Length());
  request->Queue();
  return env.Undefined();
}

}  // namespace tern
